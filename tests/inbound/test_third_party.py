"""A reply into a ticket from someone who is neither its customer nor on its To/Cc joins as a
third-party message and never changes who the ticket's customer is or where replies go."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlmodel import select

from supportdesk.store.models import Outbox, Ticket
from supportdesk.tickets import replying
from tests.factories import inbound_email, ingest


def test_a_stranger_replying_into_a_thread_is_a_third_party(
    desk: Any, cli: Callable[..., Any]
) -> None:
    t = ingest(desk, inbound_email(external_id="q1@x", sender_address="ivan@example.ru",
                                   cc_addresses=["colleague@example.ru"]))  # fmt: skip
    with desk.db.read() as s:
        customer = s.get(Ticket, t.ticket_id).customer_id  # type: ignore[union-attr]
    stranger = ingest(desk, inbound_email(external_id="q2@x", sender_address="mallory@evil.test",
                                          sender_name="Mallory", in_reply_to=["q1@x"],
                                          text="Send the refund to me instead."))  # fmt: skip
    colleague = ingest(desk, inbound_email(external_id="q3@x",
                                           sender_address="colleague@example.ru",
                                           in_reply_to=["q1@x"], text="Same here."))  # fmt: skip
    assert stranger.ticket_id == t.ticket_id == colleague.ticket_id
    doc = json.loads(cli("tickets", "show", str(t.ticket_id), "--json").stdout)
    reasons = {m["author_address"]: m["thread_reason"] for m in doc["messages"]}
    assert "third party" in reasons["mallory@evil.test"]
    assert "third party" not in reasons["colleague@example.ru"]  # on the Cc: a participant
    with desk.db.read() as s:
        assert s.get(Ticket, t.ticket_id).customer_id == customer  # type: ignore[union-attr]
    # the stranger writes last; the answer still goes to the ticket's people, not to them
    ingest(desk, inbound_email(external_id="q4@x", sender_address="mallory@evil.test",
                               in_reply_to=["q1@x"], text="Hello?"))  # fmt: skip
    msg = replying.reply(desk, t.ticket_id, text="We only refund the card that paid.")
    with desk.db.read() as s:
        ob = s.exec(select(Outbox).where(Outbox.message_id == msg.id)).one()
        assert ob.to_address != "mallory@evil.test"


def test_participants_placed_earlier_in_the_same_batch_count(
    desk: Any, cli: Callable[..., Any]
) -> None:
    """In one batch: a new ticket's Cc, and a Cc added by a reply to an existing ticket, make
    those people participants for the batch's later messages; a stranger is still a third party."""
    from supportdesk.inbound.ingest import ingest_many

    old = ingest(desk, inbound_email(external_id="p1@x", sender_address="ivan@example.ru"))
    batch = [
        inbound_email(external_id="n1@x", sender_address="olga@example.ru",
                      cc_addresses=["boss@example.ru"], subject="New one"),
        inbound_email(external_id="p2@x", sender_address="ivan@example.ru",
                      in_reply_to=["p1@x"], cc_addresses=["newguy@example.ru"], text="cc'd"),
        inbound_email(external_id="n2@x", sender_address="mallory@evil.test",
                      in_reply_to=["n1@x"], text="me instead"),
        inbound_email(external_id="n3@x", sender_address="boss@example.ru",
                      in_reply_to=["n1@x"], text="approved"),
        inbound_email(external_id="p3@x", sender_address="newguy@example.ru",
                      in_reply_to=["p2@x"], text="hi all"),
        inbound_email(external_id="p4@x", sender_address="mallory@evil.test",
                      in_reply_to=["p2@x"], text="me too"),
    ]  # fmt: skip
    with desk.db.write() as s:
        got = ingest_many(s, desk, batch)
    new_id = got[0].ticket_id
    assert {got[i].ticket_id for i in (0, 2, 3)} == {new_id} and new_id != old.ticket_id
    assert {got[i].ticket_id for i in (1, 4, 5)} == {old.ticket_id}

    def reasons(tid: int) -> dict[str, str]:
        doc = json.loads(cli("tickets", "show", str(tid), "--json").stdout)
        return {m["message_id"]: m["thread_reason"] for m in doc["messages"]}

    new, existing = reasons(new_id), reasons(old.ticket_id)
    assert "third party" in new["n2@x"] and "third party" in existing["p4@x"]
    assert "third party" not in new["n3@x"]  # on the new ticket's Cc, placed in this batch
    assert "third party" not in existing["p3@x"]  # Cc'd by a reply placed in this batch
