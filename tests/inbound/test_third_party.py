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
