"""Lines and teams: groups such as first-line, second-line, billing.

A ticket belongs to at most one group (``Ticket.group``); agents name their group. Queries and
views filter with ``group:second-line`` (``group:none`` for tickets in no group). Escalation moves
tickets to another group with an internal note; hand-over moves one agent's open tickets to
another at the end of a shift, each with a note, so nothing is lost between shifts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select

from supportdesk.actions.batch import ActionResult, execute, for_each
from supportdesk.actions.journal import record_fields, snapshot
from supportdesk.core.text import iso
from supportdesk.desk.desk import BadInput, Conflict, Desk, NotFound
from supportdesk.desk.permissions import find_agent, require_bulk, require_lead, resolve_assignee
from supportdesk.store.models import OPEN_STATUSES, Agent, Group, Ticket, utcnow

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")


def check_group_name(name: str) -> str:
    if not _NAME.match(name):
        raise BadInput(
            f"{name!r} is not a group name (lower-case letters, digits, '-', '_' or '.', e.g. second-line)"
        )
    return name


def get_group(session: Session, name: str) -> Group:
    grp = session.exec(select(Group).where(Group.name == name)).first()
    if grp is None:
        known = list(session.exec(select(Group.name).order_by(col(Group.name))).all())
        hint = f" (groups: {', '.join(known)})" if known else " (no groups yet: see groups add)"
        raise NotFound(f"there is no group named {name!r}{hint}")
    return grp


def add_group(desk: Desk, name: str, *, title: str = "", description: str = "") -> Group:
    with desk.db.write() as session:
        check_group_name(name)
        if session.exec(select(Group).where(Group.name == name)).first() is not None:
            raise Conflict(f"the group {name!r} already exists")
        grp = Group(name=name, title=title, description=description)
        session.add(grp)
        session.flush()
        from supportdesk.desk import audit as events

        events.record(session, "group_added", agent=desk.agent, name=name)
        return grp


def remove_group(desk: Desk, name: str) -> None:
    """Delete a group that no ticket or agent uses any more. Lead only."""
    with desk.db.write() as session:
        require_lead(session, desk, "deleting a group")
        grp = get_group(session, name)
        n_t = session.exec(
            select(func.count()).select_from(Ticket).where(Ticket.group == name)
        ).one()
        n_a = session.exec(select(func.count()).select_from(Agent).where(Agent.group == name)).one()
        if n_t or n_a:
            raise Conflict(
                f"the group {name!r} still has {n_t} ticket(s) and {n_a} agent(s); move them first"
            )
        session.delete(grp)
        from supportdesk.desk import audit as events

        events.record(session, "group_removed", agent=desk.agent, name=name)


def list_groups(desk: Desk) -> list[dict[str, Any]]:
    with desk.db.read() as session:
        groups = session.exec(select(Group).order_by(col(Group.name))).all()
        open_counts = dict(
            session.exec(
                select(Ticket.group, func.count())
                .where(col(Ticket.status).in_(OPEN_STATUSES), col(Ticket.group).is_not(None))
                .group_by(col(Ticket.group))
            ).all()
        )
        agents: dict[str, list[str]] = {}
        for a in session.exec(
            select(Agent).where(col(Agent.active).is_(True)).order_by(col(Agent.name))
        ).all():
            if a.group:
                agents.setdefault(a.group, []).append(a.name)
        return [
            {
                "name": g.name,
                "title": g.title,
                "description": g.description,
                "open_tickets": open_counts.get(g.name, 0),
                "agents": agents.get(g.name, []),
                "created_at": iso(g.created_at),
            }
            for g in groups
        ]


def _note_op(
    desk: Desk,
    kind: str,
    mutate: Callable[[Session, Ticket, datetime], None],
    note: Callable[[Ticket], str],
) -> Callable[[Session, Ticket, str], None]:
    def op(s: Session, t: Ticket, batch: str) -> None:
        from supportdesk.outbound.outbox import queue_outbound

        snap = snapshot(t)
        now = utcnow()
        mutate(s, t, now)
        if snapshot(t) != snap:
            queue_outbound(s, desk, t, note(t), agent=desk.agent, note=True, batch=batch, at=now)
        s.add(t)
        record_fields(s, desk, kind, t, snap, batch=batch)

    return op


def escalate(
    desk: Desk, ids: list[int], to: str, *, note: str = "", dry_run: bool = False
) -> ActionResult:
    """Move tickets to group ``to`` with an internal note; an assignee outside that group is cleared."""
    check_group_name(to)
    members: set[int] = set()

    def prepare(s: Session) -> None:
        get_group(s, to)
        members.update(a.id or 0 for a in s.exec(select(Agent).where(Agent.group == to)).all())

    def mutate(s: Session, t: Ticket, now: datetime) -> None:
        if t.group == to:
            return
        t.group = to
        if t.assignee_id is not None and t.assignee_id not in members:
            t.assignee_id = None
        t.updated_at = max(t.updated_at, now)

    def text(t: Ticket) -> str:
        return f"Escalated to {to} by {desk.agent}." + (
            f"\n\n{note.strip()}" if note.strip() else ""
        )

    return for_each(
        desk,
        "escalate",
        f"escalate {_short(ids)} to {to}",
        ids,
        _note_op(desk, "escalate", mutate, text),
        dry_run=dry_run,
        prepare=prepare,
    )


def handover(
    desk: Desk, from_agent: str, to_agent: str, *, note: str = "", dry_run: bool = False
) -> ActionResult:
    """Move every open ticket of ``from_agent`` to ``to_agent``, each with an internal note."""
    if from_agent == to_agent:
        raise BadInput("the agent handing over and the one taking over are the same", field="to")

    def work(s: Session, batch: str) -> list[int]:
        src = find_agent(s, desk.agent if from_agent == "me" else from_agent)
        if src is None:
            raise NotFound(f"there is no agent named {from_agent!r}")
        dst = resolve_assignee(s, desk, to_agent)
        if dst is None:
            raise BadInput(
                "the agent taking over must be named (to leave tickets with nobody, unassign them)",
                field="to",
            )
        if dst.id == src.id:
            raise BadInput(
                "the agent handing over and the one taking over are the same", field="to"
            )
        tickets = list(
            s.exec(
                select(Ticket)
                .where(Ticket.assignee_id == src.id, col(Ticket.status).in_(OPEN_STATUSES))
                .order_by(col(Ticket.id))
            ).all()
        )
        require_bulk(s, desk, len(tickets), "hand-over")

        def mutate(_s: Session, t: Ticket, now: datetime) -> None:
            t.assignee_id = dst.id
            t.updated_at = max(t.updated_at, now)

        def text(t: Ticket) -> str:
            return f"Handed over from {src.name} to {dst.name} by {desk.agent}." + (
                f"\n\n{note.strip()}" if note.strip() else ""
            )

        op = _note_op(desk, "handover", mutate, text)
        for t in tickets:
            op(s, t, batch)
        return [t.id or 0 for t in tickets]

    return execute(
        desk,
        "handover",
        f"hand over {from_agent}'s open tickets to {to_agent}",
        work,
        dry_run=dry_run,
    )


def _short(ids: list[int]) -> str:
    shown = ", ".join(f"#{i}" for i in ids[:5])
    return shown + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")


__all__ = [
    "add_group", "check_group_name", "escalate", "get_group", "handover", "list_groups", "remove_group",
]  # fmt: skip
