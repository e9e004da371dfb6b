"""SLA targets, due times, pauses and breaches.

Targets come from ``[sla]`` in config: the defaults, then the channel's (by type, then by
name), then the priority's (a priority can only tighten a target). Both clocks start when the
ticket is created and count business time when ``[desk.hours]`` is set.

* First response: met by the first agent reply that is not automatic (acknowledgements and
  surveys do not count).
* Resolution: met when the ticket is solved. Its clock stops while the ticket waits on the
  customer (``pending``) or is solved; when the ticket becomes active again the business time
  it spent stopped is added to ``sla_paused_seconds`` and the resolution deadline moves by as
  much. The first-response deadline never moves, but a ticket waiting on the customer is not
  counted as breaching it until it is active again.

``due_at`` is the deadline that applies now (what the queue sorts by and ``sla:<2h`` reads);
``tick()`` marks breaches and writes one ``sla_breached`` event per ticket and target;
``tick_in_batches()`` is the runner's pass, from the watermark (store/slamark.py).

Long because: the breach rules (``breached_targets``), the conditions that find the tickets
that may break them (``_breach_candidate``, the watermark's ranges) and the pass that applies
them must agree exactly; split, each part would re-state the others' rules.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import Session, col, select

from supportdesk.core.config import Config, parse_duration
from supportdesk.desk import audit as events
from supportdesk.desk.desk import Desk
from supportdesk.sla.breach import is_breached as is_breached  # shared with the quick path
from supportdesk.sla.hours import BusinessHours
from supportdesk.store import slamark
from supportdesk.store.models import Event, Ticket, utcnow

Target = Literal["first_response", "resolution"]
RUNNING = ("new", "open")  # the resolution clock runs
PAUSED = ("pending", "solved")  # waiting on the customer: the resolution clock stops
STOPPED = ("closed",)


def targets(
    config: Config, channel_kind: str, channel_name: str, priority: str
) -> tuple[timedelta, timedelta]:
    """(first response, resolution) targets for a ticket of this channel and priority."""
    sla = config.sla
    first = parse_duration(sla.first_response)
    resolution = parse_duration(sla.resolution)
    for key in dict.fromkeys((channel_kind, channel_name)):  # type first, the name wins
        over = sla.channel.get(key)
        if over:
            if over.first_response:
                first = parse_duration(over.first_response)
            if over.resolution:
                resolution = parse_duration(over.resolution)
    pover = sla.priority.get(priority)
    if pover:
        if pover.first_response:
            first = min(first, parse_duration(pover.first_response))
        if pover.resolution:
            resolution = min(resolution, parse_duration(pover.resolution))
    return first, resolution


def promised_response(
    config: Config, channel_kind: str, channel_name: str, priority: str = "normal"
) -> timedelta:
    """The first-response target an acknowledgement quotes."""
    return targets(config, channel_kind, channel_name, priority)[0]


class Deadlines:
    """One config's targets and business hours, worked out once (for a batch of tickets)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._targets: dict[tuple[str, str, str], tuple[timedelta, timedelta]] = {}
        self._hours: dict[str | None, BusinessHours] = {}

    @property
    def hours(self) -> BusinessHours:
        """The desk's business hours."""
        return self.hours_of(None)

    def hours_of(self, channel: str | None) -> BusinessHours:
        """The business hours of ``channel`` (its own ``[channel.hours]``, else the desk's)."""
        got = self._hours.get(channel)
        if got is None:
            got = self._hours[channel] = BusinessHours.from_config(self.config, channel)
        return got

    def targets(self, kind: str, channel: str, priority: str) -> tuple[timedelta, timedelta]:
        key = (kind, channel, priority)
        got = self._targets.get(key)
        if got is None:
            got = self._targets[key] = targets(self.config, kind, channel, priority)
        return got

    def apply_due_times(self, ticket: Ticket) -> None:
        """Set both deadlines from the creation time, the targets and the time spent paused.

        Call it at creation and whenever the priority or channel changes.
        """
        first, resolution = self.targets(ticket.kind, ticket.channel, ticket.priority)
        paused = timedelta(seconds=ticket.sla_paused_seconds or 0)
        hours = self.hours_of(ticket.channel)
        ticket.first_response_due_at = hours.add(ticket.created_at, first)
        ticket.resolution_due_at = hours.add(ticket.created_at, resolution + paused)
        refresh_due(ticket)

    def update_clocks(self, ticket: Ticket, now: datetime | None = None) -> None:
        """Start or end a pause to match the ticket's status, then refresh ``due_at``.

        Call it (in the same transaction) after every status change; ``now`` is the moment of
        the change. Ending a pause adds its business time to ``sla_paused_seconds`` and moves
        the resolution deadline.
        """
        now = now or utcnow()
        if ticket.status in PAUSED and ticket.sla_paused_since is None:
            ticket.sla_paused_since = now
        elif ticket.status in RUNNING and ticket.sla_paused_since is not None:
            spent = self.hours_of(ticket.channel).between(ticket.sla_paused_since, now)
            ticket.sla_paused_seconds = (ticket.sla_paused_seconds or 0) + int(
                spent.total_seconds()
            )
            ticket.sla_paused_since = None
            self.apply_due_times(ticket)
        refresh_due(ticket)


def apply_due_times(config: Config, ticket: Ticket) -> None:
    """Set both deadlines of one ticket (see ``Deadlines.apply_due_times``)."""
    Deadlines(config).apply_due_times(ticket)


def refresh_due(ticket: Ticket) -> None:
    """``due_at``: the deadline that applies now (none when solved, closed or waiting)."""
    if ticket.status not in RUNNING:
        ticket.due_at = None
    elif ticket.first_response_at is None:
        ticket.due_at = ticket.first_response_due_at
    else:
        ticket.due_at = ticket.resolution_due_at


def update_clocks(config: Config, ticket: Ticket, now: datetime | None = None) -> None:
    """Start or end a pause to match one ticket's status (see ``Deadlines.update_clocks``)."""
    Deadlines(config).update_clocks(ticket, now)


def breached_targets(ticket: Ticket, now: datetime) -> list[Target]:
    """The targets this ticket has missed as of ``now``."""
    out: list[Target] = []
    fr_due = ticket.first_response_due_at
    if fr_due is not None:
        if ticket.first_response_at is not None:
            if ticket.first_response_at > fr_due:
                out.append("first_response")
        elif ticket.status in RUNNING and fr_due < now:
            out.append("first_response")
    res_due = ticket.resolution_due_at
    if res_due is not None:
        if ticket.status in RUNNING:
            if res_due < now:
                out.append("resolution")
        elif ticket.status == "pending":
            if ticket.sla_paused_since is not None and ticket.sla_paused_since > res_due:
                out.append("resolution")
        elif ticket.solved_at is not None and ticket.solved_at > res_due:
            out.append("resolution")
    return out


@dataclass
class Clock:
    target: Target
    due_at: datetime | None
    state: Literal["met", "breached", "running", "paused", "none"]
    remaining: timedelta | None  # until due (negative when overdue); None unless running

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "state": self.state,
            "remaining_seconds": int(self.remaining.total_seconds())
            if self.remaining is not None
            else None,
        }


def clocks(ticket: Ticket, now: datetime | None = None) -> list[Clock]:
    """Both SLA clocks of a ticket, for the console's ticket view."""
    now = now or utcnow()
    missed = breached_targets(ticket, now)
    out: list[Clock] = []
    fr_due = ticket.first_response_due_at
    if fr_due is None:
        out.append(Clock("first_response", None, "none", None))
    elif ticket.first_response_at is not None:
        state: Literal["met", "breached"] = "breached" if "first_response" in missed else "met"
        out.append(Clock("first_response", fr_due, state, None))
    elif ticket.status in RUNNING:
        out.append(Clock("first_response", fr_due, "running", fr_due - now))
    else:
        out.append(Clock("first_response", fr_due, "paused", None))
    res_due = ticket.resolution_due_at
    if res_due is None:
        out.append(Clock("resolution", None, "none", None))
    elif ticket.status in RUNNING:
        out.append(Clock("resolution", res_due, "running", res_due - now))
    elif ticket.status == "pending":
        out.append(Clock("resolution", res_due, "paused", None))
    else:
        done: Literal["met", "breached"] = "breached" if "resolution" in missed else "met"
        out.append(Clock("resolution", res_due, done, None))
    return out


def humanize(delta: timedelta, language: str = "en") -> str:
    """'1 h 30 min', '5 min', '3 d' ('3 дн.' in Russian): the two largest units."""
    secs = int(delta.total_seconds())
    if language.startswith("ru"):
        units = [(86400, "дн."), (3600, "ч"), (60, "мин")]
    else:
        units = [(86400, "d"), (3600, "h"), (60, "min")]
    parts = []
    for size, label in units:
        if secs >= size:
            parts.append(f"{secs // size} {label}")
            secs %= size
    return " ".join(parts[:2]) or ("1 мин" if language.startswith("ru") else "1 min")


def _recorded_targets(session: Session, ticket_ids: list[int]) -> set[tuple[int, str]]:
    out: set[tuple[int, str]] = set()
    for i in range(0, len(ticket_ids), 500):
        rows = session.exec(
            select(Event.ticket_id, Event.data).where(
                Event.kind == "sla_breached", col(Event.ticket_id).in_(ticket_ids[i : i + 500])
            )
        ).all()
        for tid, data in rows:
            try:
                target = json.loads(data).get("target")
            except (ValueError, AttributeError):
                continue
            if tid is not None and target:
                out.add((tid, str(target)))
    return out


TICK_BATCH = 500  # tickets per write transaction in the runner's SLA pass


def _out_of_step() -> Any:
    """A status whose pause is out of step (changed by a path that did not call
    ``update_clocks``)."""
    return sa.or_(
        sa.and_(col(Ticket.status).in_(PAUSED), col(Ticket.sla_paused_since).is_(None)),
        sa.and_(col(Ticket.status).in_(RUNNING), col(Ticket.sla_paused_since).is_not(None)),
    )


def _breach_candidate(now: datetime) -> Any:
    """A ticket that may have missed a target that is not recorded yet."""
    running = col(Ticket.status).in_(RUNNING)
    resolution_recorded = (
        select(Event.id)
        .where(Event.kind == "sla_breached", col(Event.ticket_id) == col(Ticket.id))
        .where(col(Event.data).like('{"target": "resolution"%'))
        .exists()
    )
    return sa.and_(
        col(Ticket.spam).is_(False),
        sa.or_(
            sa.and_(
                col(Ticket.sla_breached).is_(False),
                sa.or_(
                    sa.and_(
                        running,
                        col(Ticket.first_response_at).is_(None),
                        col(Ticket.first_response_due_at) < now,
                    ),
                    col(Ticket.first_response_at) > col(Ticket.first_response_due_at),
                    sa.and_(running, col(Ticket.resolution_due_at) < now),
                    col(Ticket.solved_at) > col(Ticket.resolution_due_at),
                    sa.and_(
                        col(Ticket.status) == "pending",
                        col(Ticket.sla_paused_since) > col(Ticket.resolution_due_at),
                    ),
                ),
            ),
            sa.and_(running, col(Ticket.resolution_due_at) < now, sa.not_(resolution_recorded)),
        ),
    )


def _changed_or_due(since: datetime, now: datetime) -> Any:
    """The ids of the tickets a deadline of which fell in ``[since, now)`` or that changed
    since ``since``: three index range scans (ix_ticket_first_response_due_at,
    ix_ticket_resolution_due_at, ix_ticket_updated_at) instead of a walk of every ticket."""
    t = Ticket.__table__.c  # type: ignore[attr-defined]
    return sa.union(
        sa.select(t.id).where(t.first_response_due_at >= since, t.first_response_due_at < now),
        sa.select(t.id).where(t.resolution_due_at >= since, t.resolution_due_at < now),
        sa.select(t.id).where(t.updated_at >= since),
    )


def tick_candidates(
    session: Session,
    now: datetime,
    *,
    after: int = 0,
    limit: int | None = None,
    since: datetime | None = None,
) -> list[int]:
    """The ids :func:`tick` would look at, in order (those above ``after``, at most ``limit``):
    read-only, so the runner finds them without holding the write lock and then ticks them
    :data:`TICK_BATCH` at a time. A desk that has not been ticked for a while (a big import, a
    runner down over a weekend) may have a hundred thousand; one write transaction for all of
    them held every other writer for a minute and let the runner's own lease lapse.

    ``since`` (the watermark, store/slamark.py): only among the tickets a deadline of which fell
    in ``[since, now)`` or that changed since ``since``; a complete pass at ``since`` or later
    left nothing to do among the others."""
    stmt = (
        select(Ticket.id)
        .where(sa.or_(_out_of_step(), _breach_candidate(now)), col(Ticket.id) > after)
        .order_by(col(Ticket.id))
    )
    if since is not None:
        stmt = stmt.where(col(Ticket.id).in_(_changed_or_due(since, now)))
    if limit is not None:
        stmt = stmt.limit(limit)
    return [int(i) for i in session.exec(stmt).all() if i is not None]


WATERMARK_MOST = 20_000  # more candidates than this after a watermark: the batched full pass


def tick_in_batches(
    desk: Desk, now: datetime, *, stop: threading.Event | None = None, full: bool = False
) -> int:
    """The runner's SLA pass: :func:`tick` over :func:`tick_candidates`, :data:`TICK_BATCH`
    tickets per write transaction. Returns how many breaches it recorded.

    From the watermark (store/slamark.py: the ``now`` of the last complete pass) it looks only
    at the tickets whose deadlines fell since or that changed since: a pass with nothing to
    record reads a few rows instead of every ticket. A full pass when there is no watermark
    (a new desk, one invalidated by an import or a change written with an old ``updated_at``),
    every ``slamark.FULL_EVERY``, or when ``full``.

    The full pass reads the candidates a batch at a time, from where the last batch ended (in
    id order: one pass over the tickets in all): reading all 810,000 of a never-ticked 1M desk
    at once held 130 MB in the console that runs the runner. Once ``stop`` is set (the runner
    is told to stop: the console quit) the pass ends after the batch it is in, and the
    watermark stays where it was; the next pass finds what is still due (a catch-up over a
    never-ticked 1M desk is minutes of CPU, and went on after the console had closed)."""
    with desk.db.read() as s:
        mark = slamark.read(s)
    since = None if full else mark.since(now)
    recorded = 0
    due: list[int] = []
    if since is not None:
        with desk.db.read() as s:
            due = tick_candidates(s, now, since=since, limit=WATERMARK_MOST + 1)
        if len(due) > WATERMARK_MOST:
            since = None
    if since is not None:
        for i in range(0, len(due), TICK_BATCH):
            if stop is not None and stop.is_set():
                return recorded
            with desk.db.write() as s:
                recorded += len(tick(s, desk, now, ids=due[i : i + TICK_BATCH]))
    else:
        after = 0
        while True:
            if stop is not None and stop.is_set():
                return recorded
            with desk.db.read() as s:
                due = tick_candidates(s, now, after=after, limit=TICK_BATCH)
            if not due:
                break
            with desk.db.write() as s:
                recorded += len(tick(s, desk, now, ids=due))
            after = due[-1]
    with desk.db.write() as s:
        slamark.advance(s, mark, now, full=since is None)
    return recorded


def tick(
    session: Session, desk: Desk, now: datetime | None = None, *, ids: list[int] | None = None
) -> list[tuple[int, Target]]:
    """Mark breached tickets; one ``sla_breached`` event per ticket and target.

    The runner calls it every minute in write transactions of at most :data:`TICK_BATCH`
    tickets (``ids``, from :func:`tick_candidates`); without ``ids`` it looks at every ticket.
    It also repairs a pause left out of step with the status (a status changed by a path that
    did not call ``update_clocks``). Returns the (ticket id, target) pairs newly recorded.
    """
    now = now or utcnow()
    config = desk.config
    session.flush()  # the caller's own changes still go through the watermark's guard
    was = session.info.get("sla_pass")
    session.info["sla_pass"] = True  # what the pass writes it has looked at (store/slamark.py)
    try:
        only = col(Ticket.id).in_(ids) if ids is not None else sa.true()
        for t in session.exec(select(Ticket).where(only, _out_of_step())).all():
            update_clocks(config, t, now)
            session.add(t)
        candidates = session.exec(
            select(Ticket).where(only, _breach_candidate(now)).order_by(col(Ticket.id))
        ).all()
        if not candidates:
            return []
        recorded = _recorded_targets(session, [t.id or 0 for t in candidates])
        new: list[tuple[int, Target]] = []
        for t in candidates:
            tid = t.id or 0
            missed = breached_targets(t, now)
            if missed and not t.sla_breached:
                t.sla_breached = True
                session.add(t)
            for target in missed:
                if (tid, target) in recorded:
                    continue
                due = t.first_response_due_at if target == "first_response" else t.resolution_due_at
                events.record(
                    session, "sla_breached", agent="system", ticket_id=tid, at=due or now,
                    target=target, due=due, detected_at=now, priority=t.priority, channel=t.channel,
                )  # fmt: skip
                new.append((tid, target))
        return new
    finally:
        session.flush()  # exempt from the watermark guard; what the caller writes after is not
        session.info["sla_pass"] = was
