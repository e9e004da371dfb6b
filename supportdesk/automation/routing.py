"""Routing: who gets a ticket, and tickets of agents who went off shift.

``pick_agent`` chooses among the active agents of a group (all active agents without a group)
who are on shift: ``round-robin`` takes the next one after the last pick (kept in the Meta table
per group), ``least-loaded`` the one with the fewest open tickets (ties by name). Agents at or
over ``cap`` open tickets are skipped; when nobody qualifies the ticket stays unassigned.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, func, select

from supportdesk.actions.journal import record_fields, snapshot
from supportdesk.automation import settings as agent_settings
from supportdesk.desk.desk import Desk
from supportdesk.store.models import Agent, Meta, Ticket

STRATEGIES = ("round-robin", "least-loaded")


def open_load(session: Session, agent_ids: list[int]) -> dict[int, int]:
    if not agent_ids:
        return {}
    rows = session.exec(
        select(Ticket.assignee_id, func.count())
        .where(col(Ticket.assignee_id).in_(agent_ids), col(Ticket.status).in_(("new", "open")))
        .group_by(col(Ticket.assignee_id))
    ).all()
    load = dict.fromkeys(agent_ids, 0)
    for aid, n in rows:
        if aid is not None:
            load[int(aid)] = int(n)
    return load


def candidates(session: Session, desk: Desk, group: str | None, now: datetime) -> list[Agent]:
    q = select(Agent).where(col(Agent.active).is_(True)).order_by(col(Agent.name))
    if group:
        q = q.where(Agent.group == group)
    agents = list(session.exec(q).all())
    prefs = agent_settings.load(desk.home)
    tz = desk.config.desk.timezone
    return [a for a in agents if a.name not in prefs or prefs[a.name].on_shift(now, tz)]


def pick_agent(
    session: Session,
    desk: Desk,
    strategy: str,
    *,
    group: str | None,
    cap: int | None,
    now: datetime,
) -> tuple[Agent | None, str]:
    """(the agent, why) — the agent is None when nobody present is under the cap."""
    agents = candidates(session, desk, group, now)
    where = f" in {group}" if group else ""
    if not agents:
        return None, f"nobody{where} is on shift"
    load = open_load(session, [a.id or 0 for a in agents])
    if cap is not None:
        agents = [a for a in agents if load.get(a.id or 0, 0) < cap]
        if not agents:
            return None, f"everyone{where} has {cap} open tickets or more"
    if strategy == "least-loaded":
        best = min(agents, key=lambda a: (load.get(a.id or 0, 0), a.name))
        return best, f"least loaded{where} ({load.get(best.id or 0, 0)} open)"
    key = f"routing.rr.{group or '*'}"
    row = session.get(Meta, key)
    last = row.value if row is not None else ""
    names = [a.name for a in agents]
    later = [a for a in agents if a.name > last]
    chosen = later[0] if later else agents[0]
    if row is None:
        row = Meta(key=key, value=chosen.name)
    row.value = chosen.name
    session.add(row)
    return chosen, f"round-robin{where} ({', '.join(names)})"


def return_off_shift(session: Session, desk: Desk, now: datetime, batch_for: object) -> list[int]:
    """New and open tickets of agents who are off shift go back to their group, unassigned.

    ``batch_for(agent_name)`` opens a journal batch (agent ``routing``) and returns its id.
    """
    prefs = agent_settings.load(desk.home)
    tz = desk.config.desk.timezone
    off = [p.name for p in prefs.values() if p.shift and not p.on_shift(now, tz)]
    if not off:
        return []
    agents = session.exec(select(Agent).where(col(Agent.name).in_(off))).all()
    moved: list[int] = []
    for a in agents:
        tickets = session.exec(
            select(Ticket).where(
                Ticket.assignee_id == a.id, col(Ticket.status).in_(("new", "open"))
            )
        ).all()
        if not tickets:
            continue
        batch = batch_for(a.name)  # type: ignore[operator]
        for t in tickets:
            snap = snapshot(t)
            t.assignee_id = None
            if not t.group and a.group:
                t.group = a.group
            t.updated_at = max(t.updated_at, now)
            session.add(t)
            record_fields(
                session, desk, "assign", t, snap, batch=batch, reason=f"{a.name} is off shift"
            )
            moved.append(t.id or 0)
    return moved
