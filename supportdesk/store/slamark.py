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

Where it is kept, for a team desk on PostgreSQL where every agent's login may write what the
day's work needs: the watermark itself (``{"at", "full_at", "stale"}``) is the runner's row in
``cursor`` (channel ``sla``, key ``watermark``), which agents and leads may only read; an
invalidation is ``meta["sla:stale"]``, a counter any writer bumps. The watermark holds the
counter it was taken at, and it counts only while the two agree, so a write to ``meta`` can
only ever make the next pass a full one: an agent cannot move the watermark or the hourly full
pass to hide a breach (a ``full_at`` in the future counts as none). Nor can
they set the counter back to the watermark's after someone's old-dated change raised it: on
PostgreSQL the team's trigger (store/teamdb.py, ``sd_meta_guard``) lets people's logins only
raise it, and a value outside ``0..10^18`` is unreadable (a full pass, after which the runner
resets it). A pass moves the watermark
only if the counter is still what it read before it started (compare and set, under the write
lock), so an invalidation while it ran is never lost.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlmodel import Session, select

from supportdesk.store.models import Cursor, Meta, Ticket, utcnow

CHANNEL, KEY = "sla", "watermark"  # the runner's row in cursor
STALE = "sla:stale"  # meta: the invalidations' counter
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
    stale: int  # the invalidations' counter as read

    def since(self, now: datetime) -> datetime | None:
        """Where a pass at ``now`` starts looking (deadlines, changes); None: a full pass."""
        if self.at is None or self.full_at is None:
            return None
        if not now - FULL_EVERY < self.full_at <= now + SLACK:
            return None  # due, or a full pass "in the future": none to trust
        return min(self.at, now) - SLACK


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    got = datetime.fromisoformat(value)
    return got if got.tzinfo is not None else got.replace(tzinfo=UTC)


def _stale(session: Session) -> tuple[Meta | None, int]:
    row = session.get(Meta, STALE)
    if row is None:
        return row, 0
    value = row.value.strip() if isinstance(row.value, str) else ""
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        return row, -1  # unreadable: never equal to a watermark's count, so a full pass
    return row, int(value)


def _row(session: Session) -> Cursor | None:
    return session.exec(select(Cursor).where(Cursor.channel == CHANNEL, Cursor.key == KEY)).first()


def read(session: Session) -> Mark:
    """The watermark as a pass may use it: ``at`` is None unless it was taken at the current
    invalidation count."""
    _meta, stale = _stale(session)
    row = _row(session)
    if row is None:
        return Mark(None, None, stale)
    try:
        got = json.loads(row.value)
        at, full_at, seen = _parse(got.get("at")), _parse(got.get("full_at")), got.get("stale")
    except (ValueError, TypeError, AttributeError):
        return Mark(None, None, stale)  # unreadable: a full pass, then written afresh
    if not isinstance(seen, int) or isinstance(seen, bool) or seen != stale:
        at = None
    return Mark(at, full_at, stale)


def advance(session: Session, seen: Mark, now: datetime, *, full: bool) -> bool:
    """A pass at ``now`` that started from ``seen`` is complete: move the watermark to ``now``
    unless an invalidation came since ``seen`` was read (then leave it: the next pass is full).
    Call it in a write transaction. Returns whether it moved."""
    with session.no_autoflush:
        _meta, stale = _stale(session)
        row = _row(session)
    if stale != seen.stale:
        return False
    if stale < 0:  # an unreadable counter (the pass that just ran was a full one): reset it
        meta = _meta or Meta(key=STALE)
        meta.value, stale = "0", 0
        session.add(meta)
    row = row or Cursor(channel=CHANNEL, key=KEY, value="")
    full_at = now if full else seen.full_at
    row.value = json.dumps(
        {"at": now.isoformat(), "full_at": full_at.isoformat() if full_at else None,
         "stale": stale}
    )  # fmt: skip
    row.updated_at = utcnow()
    session.add(row)
    return True


def invalidate(session: Session) -> None:
    """The next SLA pass must be a full one (in the caller's write transaction)."""
    if session.info.get("sla_stale"):
        return
    session.info["sla_stale"] = True
    with session.no_autoflush:
        row, stale = _stale(session)
    row = row or Meta(key=STALE)
    row.value = str(max(stale, 0) + 1)
    session.add(row)


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
