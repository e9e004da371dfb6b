"""The SLA pass from its watermark (store/slamark.py): it records exactly what a full pass
would, reads only the tickets whose deadlines fell or that changed since, and every path that
changes a clock column moves ``updated_at`` (or, with an old one, makes the next pass full)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import col, select

from supportdesk.actions import journal
from supportdesk.automation import spam
from supportdesk.outbound.outbox import queue_outbound
from supportdesk.runner import state
from supportdesk.sla import clocks as sla
from supportdesk.store import slamark
from supportdesk.store.models import Event, Outbox, Ticket, utcnow
from supportdesk.tickets import triage
from tests.configs import desk_config
from tests.conftest import write_config
from tests.factories import claim, inbound_email, ingest


def _mark(desk: Any) -> slamark.Mark:
    with desk.db.read() as s:
        return slamark.read(s)


def _ticket(desk: Any, tid: int) -> Ticket:
    with desk.db.read() as s:
        t = s.get(Ticket, tid)
        assert t is not None
        return t


def _aware(d: datetime) -> datetime:
    return d if d.tzinfo else d.replace(tzinfo=UTC)


# ---- every path that changes a clock column moves updated_at -----------------------------


def _close(desk: Any, tid: int) -> None:
    triage.close(desk, [tid])


def _solve(desk: Any, tid: int) -> None:
    triage.close(desk, [tid], solved=True)


def _pending(desk: Any, tid: int) -> None:
    triage.set_fields(desk, [tid], status="pending")


def _priority(desk: Any, tid: int) -> None:
    triage.set_fields(desk, [tid], priority="urgent")


def _spam(desk: Any, tid: int) -> None:
    spam.mark(desk, [tid])


def _queued(desk: Any, tid: int) -> None:
    with desk.db.write() as s:
        queue_outbound(s, desk, s.get(Ticket, tid), "Which model?", agent="alice")


def _delivered(desk: Any, tid: int) -> None:
    with desk.db.read() as s:
        ob = int(s.exec(select(Outbox.id)).one() or 0)
    state.mark_sent(desk, ob, ["x@acme.test"], epoch=claim(desk, ob))


def _customer_replies(desk: Any, tid: int) -> None:
    first = _ticket(desk, tid)
    with desk.db.read() as s:
        from supportdesk.store.models import Message

        mid = s.exec(select(Message.message_id).where(Message.ticket_id == tid)).first()
    r = ingest(
        desk,
        inbound_email(sent_at=utcnow(), in_reply_to=[mid], references=[mid], subject="Re: x"),
    )
    assert r.ticket_id == first.id


PATHS: dict[str, tuple[Callable[[Any, int], None] | None, Callable[[Any, int], None]]] = {
    # name: (what comes first, the change under test)
    "close": (None, _close),
    "solve": (None, _solve),
    "pause": (None, _pending),
    "resume (reopen)": (_solve, lambda d, t: triage.reopen(d, [t])),
    "priority": (None, _priority),
    "spam": (None, _spam),
    "not spam": (_spam, lambda d, t: spam.unmark(d, [t])),
    "first response delivered": (_queued, _delivered),
    "customer reply reopens": (_pending, _customer_replies),
}


URGENT_SLA = """
[sla]
first_response = "4h"
resolution = "3d"
[sla.priority.urgent]
first_response = "15m"
resolution = "4h"
"""


@pytest.mark.parametrize("path", list(PATHS))
def test_a_clock_change_moves_updated_at(home: Any, path: str) -> None:
    from supportdesk.desk.desk import open_desk

    write_config(home, desk_config(sla=URGENT_SLA))
    desk = open_desk(home, agent="alice")
    try:
        _moves_updated_at(desk, path)
    finally:
        desk.close()


def _moves_updated_at(desk: Any, path: str) -> None:
    first, change = PATHS[path]
    tid = ingest(desk, inbound_email(sent_at=utcnow())).ticket_id
    if first is not None:
        first(desk, tid)
    sla.tick_in_batches(desk, utcnow())
    with desk.db.write() as s:  # the ticket last changed days ago (updated_at only)
        t = s.get(Ticket, tid)
        assert t is not None
        t.updated_at = utcnow() - timedelta(days=3)
        s.add(t)
    seen = _mark(desk)
    assert seen.at is not None
    before = _ticket(desk, tid)
    start = utcnow()
    change(desk, tid)
    after = _ticket(desk, tid)
    moved = [
        c for c in slamark.CLOCK_COLUMNS if getattr(before, c) != getattr(after, c)
    ]  # the path did change a clock column
    assert moved, path
    assert _aware(after.updated_at) >= start - timedelta(seconds=1), path
    assert _mark(desk).at is not None, path  # moved updated_at: no full pass needed


def test_undo_putting_an_old_updated_at_back_makes_the_next_pass_full(desk: Any) -> None:
    tid = ingest(desk, inbound_email(sent_at=utcnow() - timedelta(days=3))).ticket_id
    sla.tick_in_batches(desk, utcnow())
    triage.close(desk, [tid])
    sla.tick_in_batches(desk, utcnow())
    assert _mark(desk).at is not None
    journal.undo(desk)  # the ticket open again, its updated_at of three days ago back
    t = _ticket(desk, tid)
    assert t.status != "closed"
    if _aware(t.updated_at) < utcnow() - slamark.SLACK:
        assert _mark(desk).at is None


def test_a_message_dated_in_the_past_makes_the_next_pass_full(desk: Any) -> None:
    ingest(desk, inbound_email(sent_at=utcnow()))
    sla.tick_in_batches(desk, utcnow())
    assert _mark(desk).at is not None
    ingest(desk, inbound_email(sent_at=utcnow()))  # a fresh one: the watermark stays
    assert _mark(desk).at is not None
    tid = ingest(desk, inbound_email(sent_at=utcnow() - timedelta(days=2))).ticket_id
    assert _mark(desk).at is None  # due two days ago, changed "two days ago": a full pass
    assert sla.tick_in_batches(desk, utcnow()) == 1
    assert _ticket(desk, tid).sla_breached


def test_an_old_updated_at_written_by_the_orm_invalidates(desk: Any) -> None:
    tid = ingest(desk, inbound_email(sent_at=utcnow())).ticket_id
    sla.tick_in_batches(desk, utcnow())
    with desk.db.write() as s:  # a path that forgot updated_at, on a ticket idle for days
        t = s.get(Ticket, tid)
        assert t is not None
        t.updated_at = utcnow() - timedelta(days=3)
        s.add(t)
    assert _mark(desk).at is not None  # updated_at alone is no clock change
    with desk.db.write() as s:
        t = s.get(Ticket, tid)
        assert t is not None
        t.status = "open"
        s.add(t)
    assert _mark(desk).at is None


# ---- the watermark pass records what the full pass would ---------------------------------

START = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)

OPS = st.one_of(
    st.tuples(st.just("new"), st.sampled_from(["email", "telegram"]), st.integers(0, 3)),
    st.tuples(st.just("late_new"), st.integers(1, 5000), st.just(0)),  # dated minutes ago
    st.tuples(st.just("status"), st.integers(0, 40), st.sampled_from(sla.RUNNING + sla.PAUSED + sla.STOPPED)),
    st.tuples(st.just("reply"), st.integers(0, 40), st.just(0)),
    st.tuples(st.just("priority"), st.integers(0, 40), st.sampled_from(["low", "normal", "urgent"])),
    st.tuples(st.just("spam"), st.integers(0, 40), st.just(0)),
    st.tuples(st.just("forgot"), st.integers(0, 40), st.sampled_from(sla.RUNNING + sla.PAUSED)),
    st.tuples(st.just("wait"), st.integers(1, 6 * 24 * 60), st.just(0)),
    st.tuples(st.just("pass"), st.just(0), st.just(0)),
    st.tuples(st.just("pass"), st.just(0), st.just(0)),
)  # fmt: skip


class Sim:
    def __init__(self, desk: Any) -> None:
        self.desk = desk
        self.now = START
        self.ids: list[int] = []
        self.watermark_passes = 0

    def _ticket(self, s: Any, i: int) -> Ticket | None:
        return s.get(Ticket, self.ids[i % len(self.ids)]) if self.ids else None

    def apply(self, op: str, a: Any, b: Any) -> None:
        config = self.desk.config
        if op == "wait":
            self.now += timedelta(minutes=a)
            return
        if op == "pass":
            self.check_pass()
            return
        with self.desk.db.write() as s:
            if op in ("new", "late_new"):
                at = self.now if op == "new" else self.now - timedelta(minutes=a)
                prio = ["low", "normal", "high", "urgent"][b if op == "new" else 1]
                t = Ticket(customer_id=self.customer(s), kind=str(a) if op == "new" else "email",
                           channel="support", priority=prio, created_at=at, updated_at=at)  # fmt: skip
                sla.apply_due_times(config, t)
                s.add(t)
                s.flush()
                self.ids.append(t.id or 0)
                return
            t = self._ticket(s, a)
            if t is None:
                return
            if op == "status":
                t.status = b
                t.solved_at = (
                    self.now if b == "solved" else (t.solved_at if b == "closed" else None)
                )
                sla.update_clocks(config, t, self.now)
            elif op == "forgot":  # a status changed without update_clocks (the pass repairs
                t.status = b  # it) nor updated_at: the guard must make the next pass full
                s.add(t)
                return
            elif op == "reply":
                if t.first_response_at is None:
                    t.first_response_at = self.now
                sla.refresh_due(t)
            elif op == "priority":
                t.priority = b
                sla.apply_due_times(config, t)
            elif op == "spam":
                t.spam = not t.spam
            t.updated_at = max(t.updated_at, self.now)
            s.add(t)

    def customer(self, s: Any) -> int:
        from supportdesk.store.models import Customer

        c = s.exec(select(Customer)).first()
        if c is None:
            c = Customer(name="c")
            s.add(c)
            s.flush()
        return int(c.id or 0)

    def snapshot(self, s: Any) -> tuple[Any, ...]:
        tickets = s.exec(select(Ticket).order_by(Ticket.id)).all()
        evs = s.exec(select(Event.ticket_id, Event.data).where(Event.kind == "sla_breached")).all()
        return (
            [(t.id, t.sla_breached, t.sla_paused_since, t.sla_paused_seconds, t.resolution_due_at,
              t.due_at) for t in tickets],
            sorted((tid or 0, d) for tid, d in evs),
        )  # fmt: skip

    def check_pass(self) -> None:
        now = self.now
        # the full pass's result on this very state, then rolled back
        with self.desk.db.write() as s:
            sla.tick(s, self.desk, now)
            s.flush()
            want = self.snapshot(s)
            s.rollback()
        since = _mark(self.desk).since(now)
        self.watermark_passes += since is not None
        sla.tick_in_batches(self.desk, now)
        with self.desk.db.read() as s:
            got = self.snapshot(s)
        assert got == want, f"watermark pass (since {since}) differs from the full pass at {now}"


@pytest.fixture
def sim(desk: Any, monkeypatch: pytest.MonkeyPatch) -> Sim:
    sim = Sim(desk)
    monkeypatch.setattr(slamark, "clock", lambda: sim.now)
    monkeypatch.setattr(slamark, "SLACK", timedelta(0))  # the logic alone, no margin to hide in
    monkeypatch.setattr(slamark, "FULL_EVERY", timedelta(days=365))
    return sim


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(OPS, min_size=1, max_size=30))
def test_watermark_pass_records_what_a_full_pass_would(sim: Sim, ops: list[Any]) -> None:
    for op in ops:
        sim.apply(*op)
    sim.apply("pass", 0, 0)


def test_a_change_after_the_deadline_passed_is_seen(sim: Sim) -> None:
    sim.apply("new", "email", 1)
    sim.apply("status", 0, "pending")  # waiting on the customer: first response not counted
    sim.apply("wait", 5 * 60, 0)  # its first-response deadline passes meanwhile
    sim.apply("pass", 0, 0)
    sim.apply("wait", 10, 0)
    sim.apply("status", 0, "open")  # active again: the missed first response now counts
    sim.apply("pass", 0, 0)  # found by its updated_at only (its deadline fell before)
    assert sim.watermark_passes == 1
    with sim.desk.db.read() as s:
        assert s.exec(select(Ticket.sla_breached)).one()


def test_the_simulation_exercises_watermark_passes(sim: Sim) -> None:
    for _ in range(3):
        sim.apply("new", "email", 1)
    for step in range(12):
        sim.apply("pass", 0, 0)
        sim.apply("wait", 37, 0)
        sim.apply("status" if step % 3 else "reply", step, "open" if step % 2 else "pending")
    sim.apply("pass", 0, 0)
    assert sim.watermark_passes >= 10


# ---- a pass with nothing to record reads a bounded number of rows ------------------------


@pytest.mark.sqlite_only
def test_the_idle_pass_reads_by_index_ranges(desk: Any) -> None:
    now = utcnow()
    since = now - timedelta(minutes=20)
    with desk.db.read() as s:
        stmt = (
            select(Ticket.id)
            .where(sa_candidate(now), Ticket.id > 0)
            .where(col(Ticket.id).in_(sla._changed_or_due(since, now)))
            .order_by(Ticket.id)
        )
        conn = s.connection()
        compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        params = tuple(compiled.params[k] for k in compiled.positiontup or ())
        plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), params).all()
    details = [str(r[-1]) for r in plan]
    assert not any(d.startswith("SCAN ticket") for d in details), details
    for ix in ("ix_ticket_first_response_due_at", "ix_ticket_resolution_due_at",
               "ix_ticket_updated_at"):  # fmt: skip
        assert any(ix in d for d in details), details


def sa_candidate(now: datetime) -> Any:
    import sqlalchemy as sa

    return sa.or_(sla._out_of_step(), sla._breach_candidate(now))


def test_the_idle_pass_looks_at_no_ticket(desk: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(30):
        ingest(desk, inbound_email(sent_at=utcnow() - timedelta(minutes=i)))
    now = utcnow() + timedelta(minutes=1)
    sla.tick_in_batches(desk, now)  # the first: full
    seen: list[int] = []
    real = sla._changed_or_due

    def counted(since: datetime, now: datetime) -> Any:
        with desk.db.read() as s:
            seen.append(len(s.connection().execute(real(since, now)).all()))
        return real(since, now)

    monkeypatch.setattr(sla, "_changed_or_due", counted)
    monkeypatch.setattr(slamark, "SLACK", timedelta(0))
    later = now + timedelta(minutes=1)
    with desk.db.write() as s:  # all changed long ago
        for t in s.exec(select(Ticket)).all():
            t.updated_at = now - timedelta(hours=1)
            s.add(t)
    sla.tick_in_batches(desk, later)
    assert seen == [0]  # not one ticket read: no deadline fell, none changed


# ---- what a writer of meta (any agent's login on a team desk) can and cannot do -------------


def _set_meta(desk: Any, key: str, value: str) -> None:
    from supportdesk.store.models import Meta

    with desk.db.write() as s:
        row = s.get(Meta, key) or Meta(key=key)
        row.value = value
        s.add(row)


def test_the_watermark_is_the_runners_row_and_meta_can_only_force_a_full_pass(desk: Any) -> None:
    from supportdesk.store.models import Cursor, Meta

    ingest(desk, inbound_email(sent_at=utcnow()))
    sla.tick_in_batches(desk, utcnow())
    mark = _mark(desk)
    assert mark.at is not None and mark.since(utcnow()) is not None
    with desk.db.read() as s:  # kept where only the runner may write (teamdb.RUNNER_ONLY)
        rows = s.exec(select(Cursor).where(Cursor.channel == "sla")).all()
        assert [r.key for r in rows] == ["watermark"]
        assert s.get(Meta, "sla:watermark") is None
    # the old place, written by hand with a watermark far ahead: ignored
    _set_meta(desk, "sla:watermark", '{"at": "2099-01-01T00:00:00+00:00", "gen": 99}')
    assert _mark(desk) == mark
    # the counter written with anything but what the watermark holds: a full pass, then a
    # watermark again (an unreadable counter is reset by that pass)
    for value in (str(mark.stale + 5), "-1", "garbage", str(10**18), "9" * 5000):
        _set_meta(desk, "sla:stale", value)
        assert _mark(desk).since(utcnow()) is None, value
        sla.tick_in_batches(desk, utcnow())
        assert _mark(desk).since(utcnow()) is not None, value


def test_a_full_pass_dated_in_the_future_counts_as_none(desk: Any) -> None:
    from supportdesk.store.models import Cursor

    ingest(desk, inbound_email(sent_at=utcnow()))
    sla.tick_in_batches(desk, utcnow())
    with desk.db.write() as s:  # a runner on a host whose clock ran a day ahead
        row = s.exec(select(Cursor).where(Cursor.channel == "sla")).one()
        ahead = (utcnow() + timedelta(days=1)).isoformat()
        row.value = row.value.replace('"full_at": "', f'"full_at": "{ahead}", "was": "')
        s.add(row)
    assert _mark(desk).full_at is not None
    assert _mark(desk).since(utcnow()) is None  # else no hourly full pass for a day
