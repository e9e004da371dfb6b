"""First response is the first agent reply that was delivered, at the time it was delivered."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select

from supportdesk.outbound import outbox
from supportdesk.outbound.outbox import queue_outbound
from supportdesk.runner import state
from supportdesk.store.models import Outbox, Ticket
from tests.factories import claim, inbound_email, ingest

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _ticket_with_reply(desk: Any) -> tuple[int, int]:
    r = ingest(desk, inbound_email(external_id="fr1@example.ru", sent_at=T0), historical=True)
    with desk.db.write() as s:
        t = s.get(Ticket, r.ticket_id)
        queue_outbound(s, desk, t, "Which model?", agent="alice", at=T0 + timedelta(minutes=5))
        ob = s.exec(select(Outbox)).one()
        return r.ticket_id, int(ob.id or 0)


def _t(desk: Any, tid: int) -> Ticket:
    with desk.db.read() as s:
        t = s.get(Ticket, tid)
        assert t is not None
        return t


def test_a_queued_reply_is_not_a_first_response(desk: Any, cli: Any) -> None:
    tid, _ob = _ticket_with_reply(desk)
    t = _t(desk, tid)
    assert t.first_response_at is None
    assert t.due_at == t.first_response_due_at  # still counts against the first-response clock
    doc = json.loads(cli("tickets", "show", str(tid), "--json").stdout)
    assert doc["first_response_at"] is None and doc["first_response_queued"] is True
    human = cli("tickets", "show", str(tid)).stdout
    assert "reply queued, not delivered yet" in human


def test_cancelled_and_failed_replies_never_set_it(desk: Any) -> None:
    tid, ob = _ticket_with_reply(desk)
    with desk.db.write() as s:
        outbox.cancel(s, desk, ob)
    assert _t(desk, tid).first_response_at is None
    with desk.db.write() as s:
        outbox.retry(s, desk, ob)
    for _ in range(outbox.MAX_ATTEMPTS + 1):
        epoch = claim(desk, ob)
        if state.mark_failed(desk, ob, "no SMTP server", epoch=epoch) == "failed":
            break
    assert _t(desk, tid).first_response_at is None


def test_delivery_sets_it_at_the_delivery_time(desk: Any, cli: Any) -> None:
    tid, ob = _ticket_with_reply(desk)
    before = datetime.now(UTC)
    state.mark_sent(desk, ob, ["x@acme.test"], epoch=claim(desk, ob))
    t = _t(desk, tid)
    assert t.first_response_at is not None
    fr = t.first_response_at.replace(tzinfo=t.first_response_at.tzinfo or UTC)
    assert fr >= before - timedelta(seconds=1)  # the delivery, not the queueing (T0 + 5 min)
    assert t.due_at == t.resolution_due_at
    doc = json.loads(cli("tickets", "show", str(tid), "--json").stdout)
    assert doc["first_response_queued"] is False


def test_sla_breached_flag_agrees_with_the_query_without_a_runner(desk: Any, cli: Any) -> None:
    # a ticket a month past due; no runner has ever ticked
    r = ingest(desk, inbound_email(external_id="late@example.ru", sent_at=T0), historical=True)
    listed = json.loads(cli("tickets", "list", "--json").stdout)
    breached = json.loads(cli("tickets", "list", "sla:breached", "--json").stdout)
    assert [t["id"] for t in breached] == [r.ticket_id]
    assert [t["sla_breached"] for t in listed] == [True]
    doc = json.loads(cli("tickets", "show", str(r.ticket_id), "--json").stdout)
    assert doc["sla_breached"] is True
