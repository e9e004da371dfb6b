"""What the triage service does on a status change or a tag, done by hand for these tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import select

from supportdesk.services import csat, events, sla
from supportdesk.store.models import Agent, Tag, Ticket, TicketTag


def set_status(desk: Any, ticket_id: int, status: str, at: datetime, agent: str = "alice") -> Any:
    """Change a status the way triage does: event, SLA clocks, survey on solve."""
    with desk.db.write() as s:
        t = s.get(Ticket, ticket_id)
        assert t is not None
        before = t.status
        t.status = status
        if status == "solved":
            t.solved_at = at
        elif status in ("new", "open", "pending"):
            t.solved_at = None
        events.record(s, "status", agent=agent, ticket_id=t.id, at=at, before=before, after=status)
        sla.update_clocks(desk.config, t, at)
        s.add(t)
        survey = csat.request_survey(s, desk, t, now=at) if status == "solved" else None
        return survey


def add_tags(desk: Any, ticket_id: int, *names: str) -> None:
    with desk.db.write() as s:
        for name in names:
            tag = s.exec(select(Tag).where(Tag.name == name)).first()
            if tag is None:
                tag = Tag(name=name)
                s.add(tag)
                s.flush()
            s.add(TicketTag(ticket_id=ticket_id, tag_id=tag.id or 0))


def assign(desk: Any, ticket_id: int, agent: str) -> None:
    with desk.db.write() as s:
        a = s.exec(select(Agent).where(Agent.name == agent)).first()
        if a is None:
            a = Agent(name=agent)
            s.add(a)
            s.flush()
        t = s.get(Ticket, ticket_id)
        assert t is not None
        t.assignee_id = a.id
        s.add(t)


def ticket(desk: Any, ticket_id: int) -> Ticket:
    with desk.db.read() as s:
        t = s.get(Ticket, ticket_id)
        assert t is not None
        return t
