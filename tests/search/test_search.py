"""Full-text search: Russian and English word forms, phrases, prefixes, hostile input, and the
index staying consistent after edits, moves and deletes."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from supportdesk.desk.desk import BadInput
from supportdesk.search import index as search_index
from supportdesk.search import search as search_svc
from supportdesk.store import search as store
from supportdesk.store.models import Message, Ticket
from supportdesk.tickets.read import list_tickets
from tests.factories import Attachment, inbound_email, inbound_telegram, ingest


def ids(desk: Any, query: str, **kw: Any) -> list[int]:
    with desk.db.read() as s:
        return [h["id"] for h in search_svc.search(s, desk, query, kinds=["tickets"], **kw)]


def listed(desk: Any, query: str) -> set[int]:
    with desk.db.read() as s:
        return {t.id or 0 for t in list_tickets(s, desk, query)}


@pytest.fixture
def corpus(desk: Any) -> dict[str, int]:
    out = {}
    out["ru"] = ingest(
        desk,
        inbound_email(
            subject="Не печатает",
            text="Наш принтер сломался вчера",
            sender_address="ivan@example.ru",
        ),
    ).ticket_id
    out["ru2"] = ingest(
        desk,
        inbound_email(
            subject="Вопрос",
            text="Все ПРИНТЕРЫ в офисе стоят",
            sender_address="olga@example.ru",
            sender_name="Ольга",
        ),
    ).ticket_id
    out["en"] = ingest(
        desk,
        inbound_email(
            subject="Printers offline",
            text="All our printers stopped",
            sender_address="bob@example.com",
            sender_name="Bob Smith",
        ),
    ).ticket_id
    out["tg"] = ingest(
        desk, inbound_telegram(chat_id=5, text="Ёлка на сайте не грузится")
    ).ticket_id
    out["att"] = ingest(
        desk,
        inbound_email(
            subject="Счёт",
            text="см. вложение",
            sender_address="a@b.ru",
            attachments=[
                Attachment(
                    filename="invoice-march.pdf", data=b"%PDF", content_type="application/pdf"
                )
            ],
        ),
    ).ticket_id
    return out


def test_russian_word_forms_and_case(desk: Any, corpus: dict[str, int]) -> None:
    assert set(ids(desk, "принтер")) == {corpus["ru"], corpus["ru2"]}
    assert set(ids(desk, "принтера")) == {corpus["ru"], corpus["ru2"]}
    assert set(ids(desk, "ПРИНТЕРЫ")) == {corpus["ru"], corpus["ru2"]}
    assert ids(desk, "сломался") == [corpus["ru"]]


def test_yo_equals_ye(desk: Any, corpus: dict[str, int]) -> None:
    assert ids(desk, "елка") == [corpus["tg"]]
    assert ids(desk, "ёлки") == [corpus["tg"]]
    assert ids(desk, "счет") == [corpus["att"]]


def test_english_word_forms(desk: Any, corpus: dict[str, int]) -> None:
    assert ids(desk, "printer") == [corpus["en"]]
    assert ids(desk, "PRINTERS") == [corpus["en"]]
    assert ids(desk, "stopping") == [corpus["en"]]


def test_prefix_and_phrase(desk: Any, corpus: dict[str, int]) -> None:
    assert set(ids(desk, "прин*")) == {corpus["ru"], corpus["ru2"]}
    assert ids(desk, "print*") == [corpus["en"]]
    assert ids(desk, '"принтер сломался"') == [corpus["ru"]]
    assert ids(desk, '"принтеры сломались"') == [corpus["ru"]]  # a phrase of stems
    assert ids(desk, '"сломался принтер"') == []  # order matters in a phrase
    assert ids(desk, '"printers stopped"') == [corpus["en"]]


def test_and_not_and_cross_document(desk: Any, corpus: dict[str, int]) -> None:
    assert ids(desk, "принтер офис") == [corpus["ru2"]]
    assert ids(desk, "принтер -офис") == [corpus["ru"]]
    # the customer's name and the message text are different documents of one ticket
    assert ids(desk, "bob printers") == [corpus["en"]]
    assert listed(desk, "bob printers") == {corpus["en"]}
    assert listed(desk, "принтер -офис") == {corpus["ru"]}


def test_customers_attachments_and_kinds(desk: Any, corpus: dict[str, int]) -> None:
    assert ids(desk, "invoice") == [corpus["att"]]
    assert ids(desk, "march") == [corpus["att"]]
    with desk.db.read() as s:
        hits = search_svc.search(s, desk, "ольга")
        assert [h["kind"] for h in hits] == ["customer", "ticket"]
        assert hits[0]["identities"] == [{"kind": "email", "address": "olga@example.ru"}]
        msgs = search_svc.search(s, desk, "принтеры", kinds=["messages"])
        assert {h["ticket_id"] for h in msgs} == {corpus["ru"], corpus["ru2"]}
        assert all(h["kind"] == "message" for h in msgs)
        with pytest.raises(BadInput, match="the kind of result is one of"):
            search_svc.search(s, desk, "x", kinds=["bogus"])


def test_snippet_highlights_the_matching_words(desk: Any, corpus: dict[str, int]) -> None:
    with desk.db.read() as s:
        (hit,) = search_svc.search(s, desk, "сломался", kinds=["tickets"])
    assert hit["snippet"] == "Наш принтер сломался вчера"
    assert [hit["snippet"][a:b] for a, b in hit["highlights"]] == ["сломался"]
    long = "слово " * 200 + "Принтер ЗАЖЁВЫВАЕТ бумагу" + " слово" * 200
    tid = ingest(desk, inbound_email(subject="x", text=long, sender_address="z@z.ru")).ticket_id
    with desk.db.read() as s:
        (hit,) = search_svc.search(s, desk, "зажевывает", kinds=["tickets"])
    assert hit["id"] == tid
    assert hit["snippet"].startswith("…") and hit["snippet"].endswith("…")
    assert len(hit["snippet"]) < 200
    assert [hit["snippet"][a:b] for a, b in hit["highlights"]] == ["ЗАЖЁВЫВАЕТ"]


def test_filters_ranking_and_newest(desk: Any, corpus: dict[str, int]) -> None:
    from datetime import UTC, datetime

    t1 = ingest(
        desk,
        inbound_email(
            subject="модем",
            text="модем модем модем",
            sender_address="m1@x.ru",
            sent_at=datetime(2026, 1, 1, tzinfo=UTC),
        ),
    ).ticket_id
    t2 = ingest(
        desk,
        inbound_email(
            subject="другое",
            text="про модем и ещё много других слов здесь",
            sender_address="m2@x.ru",
            sent_at=datetime(2026, 6, 1, tzinfo=UTC),
        ),
    ).ticket_id
    assert ids(desk, "модем") == [t1, t2]  # best match first
    assert ids(desk, "модем", newest=True) == [t2, t1]
    with desk.db.write() as s:
        t = s.get(Ticket, t1)
        assert t is not None
        t.status = "closed"
        s.add(t)
    assert ids(desk, "модем status:new") == [t2]
    assert ids(desk, "модем", limit=1, offset=1) == [t2]


HOSTILE = ['"', "*", "NEAR(", "a OR", "-", "^", "col:x", "(((", ")", "foo)", "\x00", "x\x00y",
           "[bold]x[/bold]", "\x1b[31mred", "AND", "NOT NOT", "title:принтер", '"a" NEAR "b"',
           "a" * 10_000, "слово " * 2000, "' OR 1=1 --", "{title body}:x", "~~", "ё*"]  # fmt: skip


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_queries_never_crash(desk: Any, corpus: dict[str, int], text: str) -> None:
    with desk.db.read() as s:
        try:
            hits = search_svc.search(s, desk, text)
        except BadInput as exc:
            msg = str(exc)
            assert msg and "\n" not in msg and "Traceback" not in msg
        else:
            assert isinstance(hits, list)
        # the query language's free words take the same path: never an SQL error
        try:
            list_tickets(s, desk, text)
        except BadInput:
            pass


def test_hostile_queries_through_the_cli(cli: Any, desk: Any, corpus: dict[str, int]) -> None:
    for text in ['"', "NEAR(", "^", "a" * 10_000, "\x1b[31m", "слово " * 2000]:
        r = cli("search", text)
        assert r.exit_code in (0, 2), r.output
        assert "Traceback" not in r.output
        if r.exit_code == 2:
            assert r.stderr.startswith("supportdesk: ") and r.stderr.count("\n") == 1


def test_too_many_words_is_a_clear_message(desk: Any, corpus: dict[str, int]) -> None:
    with desk.db.read() as s, pytest.raises(BadInput, match="use at most 64"):
        search_svc.search(s, desk, "слово " * 100)


def _docs(desk: Any, kind: int) -> int:
    with desk.db.read() as s:
        return store.count(s.connection(), kind)


def test_edited_telegram_message_is_reindexed(desk: Any) -> None:
    first = inbound_telegram(chat_id=77, text="Здравствуйте\nне работает оплата", message_id=900)
    tid = ingest(desk, first).ticket_id
    assert ids(desk, "оплата") == [tid]
    edited = inbound_telegram(
        chat_id=77, text="Здравствуйте\nне работает доставка", message_id=900, edited=True
    )
    assert ingest(desk, edited).outcome == "updated"
    assert ids(desk, "оплата") == []
    assert ids(desk, "доставка") == [tid]


def test_reply_and_note_are_indexed(desk: Any, corpus: dict[str, int]) -> None:
    from supportdesk.outbound.outbox import queue_outbound

    with desk.db.write() as s:
        ticket = s.get(Ticket, corpus["en"])
        queue_outbound(s, desk, ticket, "Please power-cycle the router", note=True, agent="alice")
    assert ids(desk, "router") == [corpus["en"]]


def test_moved_message_follows_its_ticket(desk: Any, corpus: dict[str, int]) -> None:
    with desk.db.write() as s:
        msg = s.exec(select(Message).where(Message.ticket_id == corpus["en"])).one()
        msg.ticket_id = corpus["ru"]
        s.add(msg)
        search_index.reindex_ticket(s, corpus["ru"])
        search_index.reindex_ticket(s, corpus["en"])
    en_hit = [h for h in _hits(desk, "offline") if h["id"] == corpus["en"]]
    assert en_hit and en_hit[0]["message_id"] is None  # its only message has moved away
    assert ids(desk, "stopped") == [corpus["ru"]]
    assert listed(desk, "stopped") == {corpus["ru"]}
    # the ticket's subject stays with it; the moved message (and its own subject) went along
    assert set(ids(desk, '"printers offline"')) == {corpus["en"], corpus["ru"]}


def _hits(desk: Any, query: str) -> list[dict[str, Any]]:
    with desk.db.read() as s:
        return search_svc.search(s, desk, query, kinds=["tickets"])


def test_deletes_leave_no_documents(desk: Any, corpus: dict[str, int]) -> None:
    before_t, before_m = _docs(desk, store.KIND_TICKET), _docs(desk, store.KIND_MESSAGE)
    tid = corpus["ru"]
    with desk.db.write() as s:
        conn = s.connection()
        # raw deletes, as any maintenance code would do them: the triggers keep the index right
        conn.execute(
            sa.text(
                "DELETE FROM attachment WHERE message_id IN (SELECT id FROM message WHERE ticket_id = :t)"
            ),
            {"t": tid},
        )
        conn.execute(sa.text("DELETE FROM event WHERE ticket_id = :t"), {"t": tid})
        conn.execute(sa.text("DELETE FROM message WHERE ticket_id = :t"), {"t": tid})
        conn.execute(sa.text("DELETE FROM ticket WHERE id = :t"), {"t": tid})
    assert _docs(desk, store.KIND_TICKET) == before_t - 1
    assert _docs(desk, store.KIND_MESSAGE) == before_m - 1
    assert ids(desk, "сломался") == []
    assert listed(desk, "сломался") == set()
    with desk.db.write() as s:
        search_index.remove_ticket(s, corpus["ru2"])
    assert ids(desk, "офис") == []


def test_rebuild_matches_incremental_index(desk: Any, corpus: dict[str, int]) -> None:
    def snapshot() -> list[tuple[Any, ...]]:
        with desk.db.read() as s:
            return [
                tuple(r)
                for r in s.connection()
                .execute(sa.text("SELECT rowid, title, body, extra FROM search_doc ORDER BY rowid"))
                .all()
            ]

    before = snapshot()
    assert len(before) == 5 + 5 + 5  # tickets, messages, customers
    assert search_svc.rebuild_index(desk) == len(before)
    assert snapshot() == before


def test_migration_fills_the_index_from_existing_rows(desk: Any, corpus: dict[str, int]) -> None:
    from supportdesk.store.migrate import downgrade, upgrade_if_needed

    downgrade(desk.db, "0001")
    with desk.db.read() as s:
        assert not sa.inspect(s.connection()).has_table("search_doc")
    assert upgrade_if_needed(desk.db)
    assert set(ids(desk, "принтер")) == {corpus["ru"], corpus["ru2"]}


def test_words_without_letters_constrain_nothing(desk: Any, corpus: dict[str, int]) -> None:
    everything = listed(desk, "")
    assert listed(desk, "*") == everything
    assert listed(desk, "-*") == everything
    assert listed(desk, "принтер ^") == {corpus["ru"], corpus["ru2"]}


def test_stemming_helpers() -> None:
    assert store.stem_text("Принтеры ПРИНТЕРА принтер") == "принтер принтер принтер"
    assert store.stem_text("Printers printing") == "printer print"
    assert store.stem_text("ёжик Ежик") == "ежик ежик"
    t = store.make_term("прин*")
    assert t.prefix and t.stems == ["прин"]
    assert store.make_term("foo-bar").stems == ["foo", "bar"]
    assert store.make_term("^*-").empty
