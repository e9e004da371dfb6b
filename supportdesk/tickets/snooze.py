"""Snoozing: a ticket leaves the queue until a time the agent names (2h, 3d, tomorrow, a date in
the desk's time zone), and the runner's timer wakes it; a customer's reply wakes it sooner."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from supportdesk.actions.batch import ActionResult, describe_ids, for_each
from supportdesk.desk import audit as events
from supportdesk.desk.desk import BadInput, Desk
from supportdesk.store.models import (
    OPEN_STATUSES,
    Ticket,
    utcnow,
)
from supportdesk.tickets.triage import fields_op

_REL = re.compile(r"^\s*(\d+)\s*(m|min|h|d|w)\s*$", re.IGNORECASE)


def parse_until(text: str, desk: Desk, now: datetime | None = None) -> datetime:
    """ "2h", "3d", "tomorrow" (09:00 desk time), "monday", or an ISO date/time (desk time if no offset)."""
    now = now or utcnow()
    s = (text or "").strip()
    try:
        tz: Any = ZoneInfo(desk.config.desk.timezone)
    except Exception:
        tz = UTC
    m = _REL.match(s)
    if m:
        n, unit = int(m.group(1)), m.group(2).lower()
        step = {
            "m": timedelta(minutes=1),
            "min": timedelta(minutes=1),
            "h": timedelta(hours=1),
            "d": timedelta(days=1),
            "w": timedelta(weeks=1),
        }[unit]
        if n <= 0:
            raise BadInput(f"the snooze time {text!r} is not in the future", field="until")
        return now + n * step
    low = s.lower()
    local_today = now.astimezone(tz).date()
    days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    if low in ("tomorrow", "завтра"):
        return datetime.combine(local_today + timedelta(days=1), time(9, 0), tz).astimezone(UTC)
    if low in days:
        ahead = (days.index(low) - local_today.weekday()) % 7 or 7
        return datetime.combine(local_today + timedelta(days=ahead), time(9, 0), tz).astimezone(UTC)
    try:
        if len(s) == 10:
            d = date.fromisoformat(s)
            when = datetime.combine(d, time(9, 0), tz)
        else:
            when = datetime.fromisoformat(s)
            if when.tzinfo is None:
                when = when.replace(tzinfo=tz)
    except ValueError:
        raise BadInput(
            f"the snooze time {text!r} is not a time such as 2h, 3d, tomorrow or 2026-12-01T10:00",
            field="until",
        ) from None
    when = when.astimezone(UTC)
    if when <= now:
        raise BadInput(f"the snooze time {text!r} is in the past", field="until")
    return when


def snooze(
    desk: Desk, ids: list[int], until: datetime | None, *, dry_run: bool = False
) -> ActionResult:
    """Hide open tickets from ``is:open`` until ``until`` (None wakes them now)."""

    def mutate(s: Session, t: Ticket, now: datetime) -> None:
        if until is not None and t.status not in OPEN_STATUSES:
            raise BadInput(f"ticket #{t.id} is {t.status}; only open tickets can be snoozed")
        if t.snoozed_until != until:
            t.snoozed_until = until
            t.updated_at = max(t.updated_at, now)

    desc = (
        f"snooze {describe_ids(ids)} until {until.isoformat()}"
        if until
        else f"wake {describe_ids(ids)}"
    )
    return for_each(desk, "snooze", desc, ids, fields_op(desk, "snooze", mutate), dry_run=dry_run)


def wake_snoozed(session: Session, desk: Desk, now: datetime) -> list[int]:
    """Clear snoozes whose time has come (the runner calls this); returns the woken ticket ids."""
    due = session.exec(
        select(Ticket).where(
            col(Ticket.snoozed_until).is_not(None), col(Ticket.snoozed_until) <= now
        )
    ).all()
    woken = []
    for t in due:
        before = t.snoozed_until
        t.snoozed_until = None
        session.add(t)
        events.record(
            session, "woke", agent="system", ticket_id=t.id, at=now, before=before, after=None
        )
        woken.append(t.id or 0)
    return woken
