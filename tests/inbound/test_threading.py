"""Threading rules, dedupe rules and identities, at the service level."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from supportdesk.desk.identity import normalize_email
from supportdesk.store.models import Customer, Identity, Message, Ticket
from tests.factories import inbound_email, inbound_telegram, ingest


def _ticket(desk: Any, tid: int) -> Ticket:
    with desk.db.read() as s:
        t = s.get(Ticket, tid)
        assert t is not None
        return t


def test_new_mail_opens_a_ticket_with_reason(desk: Any) -> None:
    r = ingest(desk, inbound_email(external_id="a@x"))
    assert r.outcome == "new_ticket" and r.reason == "new ticket"
    t = _ticket(desk, r.ticket_id)
    assert t.subject == "Printer does not work" and t.status == "new" and t.channel == "support"
    assert t.first_response_due_at is not None and t.due_at == t.first_response_due_at


def test_in_reply_to_joins_the_ticket(desk: Any) -> None:
    first = ingest(desk, inbound_email(external_id="a@x"))
    second = ingest(
        desk, inbound_email(external_id="b@x", in_reply_to=["a@x"], subject="Re: anything")
    )
    assert second.outcome == "joined" and second.ticket_id == first.ticket_id
    assert second.reason == "In-Reply-To <a@x>"


def test_references_join_even_from_another_sender(desk: Any) -> None:
    first = ingest(desk, inbound_email(external_id="a@x"))
    r = ingest(
        desk,
        inbound_email(
            external_id="c@x", references=["zzz@y", "a@x"], sender_address="colleague@example.ru"
        ),
    )
    assert r.ticket_id == first.ticket_id and r.reason.startswith("References <a@x>")
    assert "third party" in r.reason  # not the customer, not on the To/Cc of the thread


def test_token_joins_only_for_the_tickets_customer(desk: Any) -> None:
    first = ingest(desk, inbound_email(external_id="a@x"))
    tid = first.ticket_id
    same = ingest(desk, inbound_email(external_id="d@x", subject=f"Ответ: RE[2]: [#{tid}] принтер"))
    assert same.ticket_id == tid and same.reason == f"[#{tid}] token in the subject"
    stranger = ingest(
        desk,
        inbound_email(
            external_id="e@x", subject=f"Re: [#{tid}] hi", sender_address="mallory@evil.test"
        ),
    )
    assert stranger.outcome == "new_ticket" and stranger.ticket_id != tid


def test_token_case_insensitive_address_is_same_customer(desk: Any) -> None:
    first = ingest(desk, inbound_email(external_id="a@x"))
    r = ingest(
        desk,
        inbound_email(
            external_id="f@x",
            subject=f"Fwd: AW: [#{first.ticket_id}]",
            sender_address="IVAN@Example.RU",
        ),
    )
    assert r.ticket_id == first.ticket_id


def test_duplicate_message_id_is_one_message(desk: Any) -> None:
    a = ingest(desk, inbound_email(external_id="dup@x"))
    b = ingest(desk, inbound_email(external_id="dup@x"))
    assert b.outcome == "duplicate" and b.message_id == a.message_id
    with desk.db.read() as s:
        assert len(s.exec(select(Message)).all()) == 1


def test_own_address_is_an_outbound_reply(desk: Any) -> None:
    first = ingest(desk, inbound_email(external_id="a@x"), historical=True)
    r = ingest(
        desk,
        inbound_email(
            external_id="r@acme",
            sender_address="Support@Acme.test",
            to_addresses=["ivan@example.ru"],
            in_reply_to=["a@x"],
        ),
        historical=True,
    )
    assert r.outcome == "outbound" and r.ticket_id == first.ticket_id
    t = _ticket(desk, first.ticket_id)
    assert t.first_response_at is not None and t.status == "open"


def test_telegram_joins_open_chat_and_start_is_no_ticket(desk: Any) -> None:
    start = ingest(desk, inbound_telegram(text="/start", extra={"is_start": True}))
    assert start.outcome == "ignored" and start.is_start
    a = ingest(desk, inbound_telegram(text="Привет"))
    b = ingest(desk, inbound_telegram(text="Ещё вопрос"))
    assert (
        a.outcome == "new_ticket"
        and b.ticket_id == a.ticket_id
        and b.reason == "open Telegram chat"
    )


def test_telegram_edit_keeps_previous_version(desk: Any) -> None:
    a = ingest(desk, inbound_telegram(text="первый", message_id=77))
    b = ingest(desk, inbound_telegram(text="исправленный", message_id=77, edited=True))
    assert b.outcome == "updated"
    with desk.db.read() as s:
        m = s.get(Message, a.message_id)
        assert m is not None and m.text == "исправленный" and "первый" in m.versions


def test_identity_normalization() -> None:
    assert normalize_email(" Ivan@Example.RU ") == "ivan@example.ru"
    assert normalize_email("user@пример.рф") == normalize_email("USER@xn--e1afmkfd.xn--p1ai")


def test_one_customer_many_identities(desk: Any) -> None:
    ingest(desk, inbound_email(external_id="a@x", sender_address="user@пример.рф"))
    ingest(desk, inbound_email(external_id="b@x", sender_address="USER@xn--e1afmkfd.xn--p1ai"))
    with desk.db.read() as s:
        assert len(s.exec(select(Customer)).all()) == 1
        ids = s.exec(select(Identity)).all()
        assert [i.address for i in ids] == ["user@xn--e1afmkfd.xn--p1ai"]


def test_customer_reply_wakes_a_snoozed_ticket(desk: Any) -> None:
    from datetime import timedelta

    first = ingest(desk, inbound_email(external_id="sn1@x"))
    with desk.db.write() as s:
        t = s.get(Ticket, first.ticket_id)
        assert t is not None
        t.snoozed_until = t.created_at + timedelta(days=3)
        s.add(t)
    later = inbound_email(external_id="sn2@x", in_reply_to=["sn1@x"])
    later.sent_at = later.sent_at + timedelta(hours=1)  # type: ignore[operator]
    ingest(desk, later)
    assert _ticket(desk, first.ticket_id).snoozed_until is None


def test_a_customer_without_a_name_gets_the_one_the_mail_gives(desk: Any) -> None:
    from supportdesk.search.search import search

    with desk.db.write() as s:
        cust = Customer(name="")
        s.add(cust)
        s.flush()
        s.add(Identity(customer_id=cust.id or 0, kind="email", address="nadia@example.ru"))
    ingest(desk, inbound_email(sender_address="Nadia@Example.ru", sender_name="Надежда Волкова"))
    with desk.db.read() as s:
        [row] = s.exec(select(Customer)).all()
        assert row.name == "Надежда Волкова"
        assert s.exec(select(Ticket)).one().customer_id == row.id
        # the search index knows the new name too
        hits = search(s, desk, "Волкова", kinds=["customers"])
    assert [(h["kind"], h["id"]) for h in hits] == [("customer", row.id)]
