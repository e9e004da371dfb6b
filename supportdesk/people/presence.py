"""Presence leases: which agents are looking at (or answering) a ticket right now.

Each console renews its lease every few seconds while a ticket is open; a lease that is not
renewed within ``LEASE`` (30 s) counts as gone, so a crashed console disappears on its own.
These rows are not audited: they change nothing about the ticket.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, delete, select

from supportdesk.desk.desk import BadInput, Desk
from supportdesk.store.models import Presence, utcnow

LEASE = timedelta(seconds=30)
ACTIVITIES = ("viewing", "replying")


@dataclass(frozen=True)
class Present:
    agent: str
    activity: str
    expires_at: datetime


def heartbeat(
    desk: Desk, ticket_id: int, activity: str = "viewing", *, now: datetime | None = None
) -> None:
    """Take or renew this agent's lease on a ticket (and drop expired leases of anyone)."""
    if activity not in ACTIVITIES:
        raise BadInput(f"presence activity is viewing or replying, not {activity!r}")
    now = now or utcnow()
    for attempt in range(2):
        try:
            with desk.db.write() as s:
                s.exec(delete(Presence).where(col(Presence.expires_at) < now))  # type: ignore[call-overload]
                row = s.exec(
                    select(Presence).where(
                        Presence.ticket_id == ticket_id, Presence.agent == desk.agent
                    )
                ).first()
                if row is None:
                    row = Presence(ticket_id=ticket_id, agent=desk.agent)
                row.activity = activity
                row.expires_at = now + LEASE
                s.add(row)
            return
        except sa.exc.IntegrityError:
            if attempt:
                raise  # two consoles of one agent raced twice: let the caller see it


def leave(desk: Desk, ticket_id: int | None = None) -> None:
    """Give up this agent's lease on one ticket, or on all tickets."""
    with desk.db.write() as s:
        stmt = delete(Presence).where(Presence.agent == desk.agent)  # type: ignore[arg-type]
        if ticket_id is not None:
            stmt = stmt.where(Presence.ticket_id == ticket_id)  # type: ignore[arg-type]
        s.exec(stmt)  # type: ignore[call-overload]


def others(desk: Desk, ticket_id: int, *, now: datetime | None = None) -> list[Present]:
    """Other agents holding a live lease on the ticket, replying ones first."""
    now = now or utcnow()
    with desk.db.read() as s:
        rows = s.exec(
            select(Presence)
            .where(Presence.ticket_id == ticket_id, Presence.agent != desk.agent)
            .where(col(Presence.expires_at) >= now)
            .order_by(col(Presence.agent))
        ).all()
    out = [Present(r.agent, r.activity, r.expires_at) for r in rows]
    return sorted(out, key=lambda p: (p.activity != "replying", p.agent))


AGENT_ACTIVE = timedelta(minutes=15)  # an agent who acted this recently counts as at work


def agents_online(session: Any, *, now: datetime | None = None) -> bool:
    """Someone is at work now: a console holds a live presence lease, or an agent replied,
    noted, assigned or changed a ticket within the last 15 minutes (a website chat's "online")."""
    from supportdesk.store.models import Event

    now = now or utcnow()
    if session.exec(select(Presence.id).where(col(Presence.expires_at) >= now)).first() is not None:
        return True
    recent = session.exec(
        select(Event.id)
        .where(col(Event.created_at) >= now - AGENT_ACTIVE)
        .where(Event.agent != "system", Event.agent != "")
        .where(col(Event.kind).in_(["reply", "note", "status", "assign", "viewed"]))
        .limit(1)
    ).first()
    return recent is not None
