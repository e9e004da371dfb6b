"""Dedupe keeps distinct mail: a duplicate needs the same Message-ID AND the same content."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlmodel import select

from supportdesk.store.models import Message
from tests.factories import inbound_email, ingest


def test_a_reused_message_id_with_other_content_is_kept_and_marked(
    desk: Any, cli: Callable[..., Any]
) -> None:
    first = ingest(desk, inbound_email(external_id="same@mailer", sender_address="a@x.test",
                                       subject="Printer", text="My printer is broken."))  # fmt: skip
    other = ingest(desk, inbound_email(external_id="same@mailer", sender_address="b@y.test",
                                       subject="Invoice", text="I was charged twice."))  # fmt: skip
    assert first.outcome == "new_ticket"
    assert other.outcome != "duplicate" and other.message_id != first.message_id
    # the very same messages again: duplicates, nothing stored twice
    assert ingest(desk, inbound_email(external_id="same@mailer", sender_address="a@x.test",
                                      subject="Printer", text="My printer is broken.")
                  ).outcome == "duplicate"  # fmt: skip
    assert ingest(desk, inbound_email(external_id="same@mailer", sender_address="b@y.test",
                                      subject="Invoice", text="I was charged twice.")
                  ).outcome == "duplicate"  # fmt: skip
    with desk.db.read() as s:
        rows = s.exec(select(Message).where(Message.message_id == "same@mailer")).all()
        assert len(rows) == 2
    doc = json.loads(cli("tickets", "show", str(other.ticket_id), "--json").stdout)
    assert "reused Message-ID <same@mailer>" in doc["messages"][0]["thread_reason"]


def test_reused_ids_in_one_batch_and_a_plain_resend(desk: Any) -> None:
    from supportdesk.inbound.ingest import ingest_many

    msgs = [
        inbound_email(external_id="dup@x", sender_address="a@x.test", text="one"),
        inbound_email(external_id="dup@x", sender_address="a@x.test", text="two"),
        inbound_email(external_id="dup@x", sender_address="a@x.test", text="one"),
    ]
    with desk.db.write() as s:
        results = ingest_many(s, desk, msgs, historical=True)
    assert [r.outcome == "duplicate" for r in results] == [False, False, True]
