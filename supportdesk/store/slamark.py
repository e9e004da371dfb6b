"""The SLA pass's watermark: the ``now`` of the runner's last complete SLA pass.

A pass at ``now`` with a watermark ``at`` looks only at the tickets whose deadlines fell in
``[at - SLACK, now)`` or that changed since ``at - SLACK`` (``updated_at``): what the full pass
would find is one of those, provided every change of a column the pass reads (the *clock
columns*) leaves ``updated_at`` at least ``at - SLACK``. ``SLACK`` covers a writer's
transaction that set ``updated_at`` before the pass started and committed after the pass read
past it, and clocks a little apart.

A change that leaves an older ``updated_at`` (a message dated in the past, an import, an undo
that puts the old ``updated_at`` back) *invalidates* the watermark in the same transaction:
the next pass is a full one. The ORM paths are guarded here (``before_flush``: any new ticket,
or one whose clock columns changed, with an ``updated_at`` older than ``now - SLACK``); the
bulk paths that write ticket rows without the ORM call :func:`note_rows`. The pass itself
(``session.info["sla_pass"]``) is exempt: what it writes it has looked at.

The row is ``meta["sla:watermark"]``: ``{"at", "full_at", "gen"}``. ``gen`` goes up on every
write; a pass moves the watermark only if ``gen`` is still what it read before it started
(compare and set, under the write lock), so an invalidation while it ran, or another runner's
pass, is never overwritten by a pass that did not see it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlmodel import Session

from supportdesk.store.models import Meta, Ticket, utcnow

KEY = "sla:watermark"
SLACK = timedelta(minutes=15)  # commit delay of a writer, clock skew between hosts
FULL_EVERY = timedelta(hours=1)  # a full pass at least this often, as a safety net
# the columns the pass's conditions read (sla.clocks._out_of_step, _breach_candidate)
CLOCK_COLUMNS = (
    "status", "first_response_at", "first_response_due_at", "resolution_due_at", "solved_at",
    "sla_paused_since", "sla_breached", "spam",
)  # fmt: skip

clock: Callable[[], datetime] = utcnow  # the guard's clock (tests swap in their own)


@dataclass(frozen=True)
class Mark:
    at: datetime | None  # the now of the last complete pass; None: the next pass is full
    full_at: datetime | None  # the now of the last full pass
    gen: int

    def since(self, now: datetime) -> datetime | None:
        """Where a pass at ``now`` starts looking (deadlines, changes); None: a full pass."""
        if self.at is None or self.full_at is None or now - self.full_at >= FULL_EVERY:
            return None
        return min(self.at, now) - SLACK


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def read(session: Session) -> Mark:
    row = session.get(Meta, KEY)
    if row is None:
        return Mark(None, None, 0)
    try:
        got = json.loads(row.value)
        return Mark(_parse(got.get("at")), _parse(got.get("full_at")), int(got.get("gen", 0)))
    except (ValueError, TypeError, AttributeError):
        return Mark(None, None, -1)  # unreadable: a full pass, then written afresh


def _write(session: Session, at: datetime | None, full_at: datetime | None, gen: int) -> None:
    row = session.get(Meta, KEY) or Meta(key=KEY)
    row.value = json.dumps(
        {
            "at": at.isoformat() if at else None,
            "full_at": full_at.isoformat() if full_at else None,
            "gen": gen,
        }
    )
    session.add(row)


def advance(session: Session, seen: Mark, now: datetime, *, full: bool) -> bool:
    """A pass at ``now`` that started from ``seen`` is complete: move the watermark to ``now``
    unless it changed since ``seen`` was read (then leave it: the next pass sees the change).
    Call it in a write transaction. Returns whether it moved."""
    with session.no_autoflush:
        current = read(session)
    if current.gen != seen.gen:
        return False
    _write(session, now, now if full else seen.full_at, max(seen.gen, 0) + 1)
    return True


def invalidate(session: Session) -> None:
    """The next SLA pass must be a full one (in the caller's write transaction)."""
    if session.info.get("sla_stale"):
        return
    session.info["sla_stale"] = True
    with session.no_autoflush:
        current = read(session)
    _write(session, None, current.full_at, max(current.gen, 0) + 1)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def note_rows(session: Session, updated: Iterable[datetime | None]) -> None:
    """Ticket rows written without the ORM (bulk inserts) with these ``updated_at``: any older
    than ``SLACK`` invalidates the watermark."""
    if session.info.get("sla_pass") or session.info.get("sla_stale"):
        return
    floor = clock() - SLACK
    if any(u is None or _aware(u) < floor for u in updated):
        invalidate(session)


def _clock_changed(obj: Ticket) -> bool:
    attrs = sa.inspect(obj).attrs
    return any(attrs[name].history.has_changes() for name in CLOCK_COLUMNS)


def _guard(session: Session, _context: Any, _instances: Any) -> None:
    """``before_flush``: a ticket written with clock columns changed and an old ``updated_at``
    invalidates the watermark."""
    info = session.info
    if info.get("sla_pass") or info.get("sla_stale"):
        return
    floor: datetime | None = None
    for group, new in ((session.new, True), (session.dirty, False)):
        for obj in group:
            if not isinstance(obj, Ticket):
                continue
            if floor is None:
                floor = clock() - SLACK
            upd = obj.updated_at
            if upd is not None and _aware(upd) >= floor:
                continue
            if new or _clock_changed(obj):
                invalidate(session)
                return


event.listen(Session, "before_flush", _guard)
