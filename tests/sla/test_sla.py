"""SLA targets, due times, pauses while waiting on the customer, and breach ticks."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from supportdesk.outbound import outbox
from supportdesk.runner import state
from supportdesk.search.query import apply_query
from supportdesk.sla import clocks as sla
from supportdesk.store.models import Event, Ticket, utcnow
from tests.factories import claim, inbound_email, inbound_telegram, ingest
from tests.sla.conftest import msk
from tests.sla.helpers import set_status, ticket


def test_targets_by_channel_and_priority(bdesk: Any) -> None:
    cfg = bdesk.config
    assert sla.targets(cfg, "email", "support", "normal") == (timedelta(hours=1), timedelta(days=3))
    assert sla.targets(cfg, "telegram", "telegram", "normal")[0] == timedelta(minutes=5)
    # a priority only tightens: urgent e-mail 15 min, urgent Telegram stays 5 min
    assert sla.targets(cfg, "email", "support", "urgent")[0] == timedelta(minutes=15)
    assert sla.targets(cfg, "telegram", "telegram", "urgent")[0] == timedelta(minutes=5)
    assert sla.promised_response(cfg, "email", "support") == timedelta(hours=1)
    assert sla.humanize(timedelta(hours=1, minutes=30)) == "1 h 30 min"
    assert sla.humanize(timedelta(minutes=5), "ru") == "5 мин"


def test_due_times_count_business_hours(bdesk: Any) -> None:
    # Friday 17:30 Moscow: one business hour ends Monday 09:30
    r = ingest(bdesk, inbound_email(sent_at=msk(20, 17, 30)), historical=True)
    t = ticket(bdesk, r.ticket_id)
    assert t.first_response_due_at == msk(23, 9, 30)
    assert t.due_at == msk(23, 9, 30)
    # 3 days = 72 business hours: 30 min on Friday, then 7 days and 8.5 hours
    assert t.resolution_due_at == msk(2, 17, 30, month=12)


def test_reply_switches_due_to_resolution(bdesk: Any) -> None:
    r = ingest(bdesk, inbound_email(sent_at=msk(16, 10)), historical=True)
    with bdesk.db.write() as s:
        t = s.get(Ticket, r.ticket_id)
        assert t is not None
        m = outbox.queue_outbound(s, bdesk, t, "On it.", agent="alice", at=msk(16, 10, 20))
        [ob] = outbox.delivery_of(s, [m.id or 0]).values()
    t = ticket(bdesk, r.ticket_id)
    assert t.first_response_at is None  # queued is not delivered
    assert t.due_at == t.first_response_due_at
    state.mark_sent(bdesk, ob.id or 0, [], epoch=claim(bdesk, ob.id or 0), at=msk(16, 10, 21))
    t = ticket(bdesk, r.ticket_id)
    assert t.first_response_at == msk(16, 10, 21)
    assert t.due_at == t.resolution_due_at
    assert sla.breached_targets(t, msk(16, 12)) == []


def test_pending_pauses_the_resolution_clock(bdesk: Any) -> None:
    r = ingest(bdesk, inbound_email(sent_at=msk(16, 10)), historical=True)
    due_before = ticket(bdesk, r.ticket_id).resolution_due_at
    set_status(bdesk, r.ticket_id, "open", msk(16, 10, 30))
    set_status(bdesk, r.ticket_id, "pending", msk(16, 11))
    t = ticket(bdesk, r.ticket_id)
    assert t.sla_paused_since == msk(16, 11)
    assert t.due_at is None
    [fr, res] = sla.clocks(t, msk(16, 12))
    assert res.state == "paused"
    # the customer answers on Tuesday at 10:00: paused 7 h Monday + 1 h Tuesday = 8 h
    msg = inbound_email(sent_at=msk(17, 10), subject=f"Re: Printer does not work [#{r.ticket_id}]")
    r2 = ingest(bdesk, msg, historical=True)
    assert r2.ticket_id == r.ticket_id
    t = ticket(bdesk, r.ticket_id)
    assert t.status == "open"
    assert t.sla_paused_since is None
    assert t.sla_paused_seconds == 8 * 3600
    assert due_before is not None
    # the deadline moves by 8 business hours: from Thursday 26th 10:00 to 18:00
    assert due_before == msk(26, 10)
    assert t.resolution_due_at == msk(26, 18)
    assert t.due_at == t.first_response_due_at  # still unanswered


def test_tick_records_each_breach_once(bdesk: Any) -> None:
    r = ingest(bdesk, inbound_email(sent_at=msk(16, 10)), historical=True)
    ok = ingest(bdesk, inbound_email(sent_at=msk(16, 10, 50), sender_address="o@x.test"),
                historical=True)  # fmt: skip
    with bdesk.db.write() as s:
        assert sla.tick(s, bdesk, msk(16, 10, 59)) == []
        found = sla.tick(s, bdesk, msk(16, 11, 1))
    assert found == [(r.ticket_id, "first_response")]
    with bdesk.db.write() as s:
        assert sla.tick(s, bdesk, msk(16, 11, 2)) == []
    t = ticket(bdesk, r.ticket_id)
    assert t.sla_breached
    assert not ticket(bdesk, ok.ticket_id).sla_breached
    with bdesk.db.read() as s:
        evs = s.exec(select(Event).where(Event.kind == "sla_breached")).all()
        assert len(evs) == 1
        data = json.loads(evs[0].data)
        assert data["target"] == "first_response"
        assert evs[0].created_at == msk(16, 11)  # the moment of the breach
        # the query language finds it
        ids = s.exec(apply_query(select(Ticket.id), "sla:breached", desk=bdesk)).all()
        assert r.ticket_id in ids
    # much later the resolution target is missed too: a second event, then none
    late = msk(10, 12, month=12)
    with bdesk.db.write() as s:
        found = sla.tick(s, bdesk, late)
    assert (r.ticket_id, "resolution") in found
    with bdesk.db.write() as s:
        assert [
            f for f in sla.tick(s, bdesk, late + timedelta(minutes=1)) if f[0] == r.ticket_id
        ] == []
    with bdesk.db.read() as s:
        kinds = s.exec(
            select(Event.data).where(Event.kind == "sla_breached", Event.ticket_id == r.ticket_id)
        ).all()
        assert sorted(json.loads(d)["target"] for d in kinds) == ["first_response", "resolution"]


def test_tick_ignores_paused_tickets_and_repairs_pauses(bdesk: Any) -> None:
    r = ingest(bdesk, inbound_telegram(chat_id=5, sent_at=msk(16, 10)), historical=True)
    set_status(bdesk, r.ticket_id, "pending", msk(16, 10, 1))
    with bdesk.db.write() as s:
        assert sla.tick(s, bdesk, msk(16, 12)) == []
    # a path that forgot update_clocks: status set to open by hand
    with bdesk.db.write() as s:
        t = s.get(Ticket, r.ticket_id)
        assert t is not None
        t.status = "open"
        s.add(t)
    with bdesk.db.write() as s:
        sla.tick(s, bdesk, msk(16, 11, 1))
    t = ticket(bdesk, r.ticket_id)
    assert t.sla_paused_since is None
    assert t.sla_paused_seconds == 3600
    assert t.due_at == t.first_response_due_at


def test_late_reply_between_ticks_is_still_recorded(bdesk: Any) -> None:
    r = ingest(bdesk, inbound_email(sent_at=msk(16, 10)), historical=True)
    reply = inbound_email(sent_at=msk(16, 13), sender_address="support@acme.test",
                          sender_name="alice", to_addresses=["ivan@example.ru"],
                          subject=f"Re: Printer [#{r.ticket_id}]")  # fmt: skip
    ingest(bdesk, reply, historical=True)
    with bdesk.db.write() as s:
        assert sla.tick(s, bdesk, msk(16, 14)) == [(r.ticket_id, "first_response")]
    with bdesk.db.read() as s:
        n = s.exec(select(Event.id).where(col(Event.kind) == "sla_breached")).all()
    assert len(n) == 1


def test_the_runner_ticks_a_backlog_in_bounded_write_transactions(
    bdesk: Any, monkeypatch: Any
) -> None:
    """A desk not ticked for a while (an import, a runner down over a weekend): the breaches are
    recorded a batch per write transaction, so other writers and the runner's own lease renewal
    get the lock in between (one transaction for 100,000 tickets held it for a minute)."""
    from contextlib import contextmanager

    from supportdesk.runner.loop import Runner

    ids = {
        ingest(
            bdesk,
            inbound_email(
                external_id=f"bk{i}@example.ru", sender_address=f"b{i}@x.ru", sent_at=msk(16, 10)
            ),
            historical=True,
        ).ticket_id  # fmt: skip
        for i in range(12)
    }
    monkeypatch.setattr(sla, "TICK_BATCH", 5)
    breached_at_commit: list[int] = []
    real_write = bdesk.db.write

    def breached() -> int:
        with bdesk.db.read() as s:
            evs = s.exec(select(Event).where(Event.kind == "sla_breached")).all()
        return len({e.ticket_id for e in evs})

    @contextmanager
    def write() -> Any:
        with real_write() as s:
            yield s
        breached_at_commit.append(breached())

    monkeypatch.setattr(bdesk.db, "write", write)
    Runner(bdesk).tick()
    monkeypatch.setattr(bdesk.db, "write", real_write)
    steps = [b - a for a, b in zip([0, *breached_at_commit], breached_at_commit, strict=False)]
    assert breached_at_commit[-1] == len(ids)
    assert max(steps) <= 5 and sum(1 for x in steps if x) >= 3, breached_at_commit
    with bdesk.db.read() as s:
        evs = s.exec(select(Event).where(Event.kind == "sla_breached")).all()
    per_target = {(e.ticket_id, json.loads(e.data)["target"]) for e in evs}
    assert len(per_target) == len(evs) == 2 * len(ids)  # both targets, each once
    with bdesk.db.write() as s:
        assert sla.tick(s, bdesk) == []  # nothing left for a whole-desk tick


def test_the_sla_pass_ends_after_its_batch_when_the_runner_is_told_to_stop(
    bdesk: Any, monkeypatch: Any
) -> None:
    """A catch-up over a never-ticked 1M desk is minutes of CPU: when the console quits (the
    runner's stop) in the middle of it, the pass ends after the batch in hand, committed, and
    the next pass records the rest, each breach once."""
    from contextlib import contextmanager

    from supportdesk.runner.loop import Runner

    for i in range(12):
        ingest(
            bdesk,
            inbound_email(
                external_id=f"st{i}@example.ru", sender_address=f"s{i}@x.ru", sent_at=msk(16, 10)
            ),
            historical=True,
        )
    monkeypatch.setattr(sla, "TICK_BATCH", 5)
    runner = Runner(bdesk)
    real_write = bdesk.db.write

    @contextmanager
    def write() -> Any:
        with real_write() as s:
            yield s
        runner.stop()  # told to stop while the first batch commits

    def breached() -> set[int | None]:
        with bdesk.db.read() as s:
            evs = s.exec(select(Event).where(Event.kind == "sla_breached")).all()
        return {e.ticket_id for e in evs}

    monkeypatch.setattr(bdesk.db, "write", write)
    assert sla.tick_in_batches(bdesk, utcnow(), stop=runner.stop_event) == 2 * 5
    monkeypatch.setattr(bdesk.db, "write", real_write)
    assert len(breached()) == 5  # the first batch, and no more
    Runner(bdesk).tick()  # the next pass, not stopped
    assert len(breached()) == 12
    with bdesk.db.read() as s:
        evs = s.exec(select(Event).where(Event.kind == "sla_breached")).all()
    assert len({(e.ticket_id, json.loads(e.data)["target"]) for e in evs}) == len(evs) == 24


def test_a_continuous_runner_runs_the_sla_pass_once_a_minute(bdesk: Any, monkeypatch: Any) -> None:
    """The timers run every few seconds, the SLA pass once a minute (as documented): a pass that
    finds nothing still reads every ticket, 0.58 s of CPU at 1M tickets, and every 5 s it held
    ~12% of a core in the console's runner."""
    import asyncio

    from supportdesk.runner import loop

    sla_passes: list[int] = []
    timer_runs: list[int] = []
    monkeypatch.setattr(loop, "TIMER_EVERY", 0.01)
    monkeypatch.setattr(loop.sla, "tick_in_batches", lambda *_a, **_k: sla_passes.append(1))
    monkeypatch.setattr(loop.snooze, "wake_snoozed", lambda *_a, **_k: timer_runs.append(1))
    runner = loop.Runner(bdesk)

    async def run_for(seconds: float) -> None:
        try:
            await asyncio.wait_for(runner._timer_loop(), seconds)
        except TimeoutError:
            pass

    asyncio.run(run_for(1.0))
    assert len(timer_runs) >= 5  # the other timers as often as before
    assert len(sla_passes) == 1  # the first run, then not within the minute
    monkeypatch.setattr(loop, "SLA_EVERY", 0.0)
    sla_passes.clear()
    asyncio.run(run_for(0.5))
    assert len(sla_passes) >= 3
