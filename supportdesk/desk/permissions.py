"""Who is acting and what they may do: agent lookups, roles, the lead-only checks.

The acting agent (``--as``, ``SUPPORTDESK_AGENT`` or the OS user) is looked up in the Agent
table. An agent who is not in the table acts as a plain agent, so a fresh desk works; a desk with
no agents at all treats the acting user as a lead, so the first person can set the desk up. A desk
always keeps at least one active lead: the first agent added is a lead, and the last lead cannot
be demoted or removed.

Lead-only: merging and unmerging (tickets and customers), deleting (agents, templates, groups)
and any bulk action over ``BULK_LIMIT`` tickets.
"""

from __future__ import annotations

from sqlmodel import Session, col, func, select

from supportdesk.desk import audit as events
from supportdesk.desk.desk import BadInput, Desk, NotFound, Refused
from supportdesk.store import reads
from supportdesk.store.db import session_run
from supportdesk.store.models import Agent

ROLES = ("agent", "lead")


BULK_LIMIT = 50


def find_agent(session: Session, name: str) -> Agent | None:
    return session.exec(select(Agent).where(Agent.name == name)).first()


def agent_count(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Agent)).one())


def lead_count(session: Session) -> int:
    """Active leads on the desk."""
    return int(
        session.exec(
            select(func.count())
            .select_from(Agent)
            .where(Agent.role == "lead", col(Agent.active).is_(True))
        ).one()
    )


def acting_role(session: Session, desk: Desk) -> str:
    """The role of the acting agent: their row's role, "agent" if unknown; "lead" on a desk that
    has no active lead at all (an empty desk, or one locked before leads were kept)."""
    if lead_count(session) == 0:
        return "lead"
    agent = find_agent(session, desk.agent)
    if agent is not None:
        return agent.role if agent.active else "agent"
    return "agent"


def require_lead(session: Session, desk: Desk, what: str) -> None:
    """Raise Refused (exit 4) unless the acting agent is a lead."""
    if acting_role(session, desk) != "lead":
        raise Refused(f"{what} needs the lead role, and {desk.agent} is not a lead")


def require_bulk(session: Session, desk: Desk, count: int, action: str) -> None:
    if count > BULK_LIMIT:
        require_lead(session, desk, f"{action} over {count} tickets (more than {BULK_LIMIT})")


def known_names(session: Session) -> list[str]:
    return list(
        session.exec(
            select(Agent.name).where(col(Agent.active).is_(True)).order_by(col(Agent.name))
        ).all()
    )


def resolve_assignee(session: Session, desk: Desk, who: str) -> Agent | None:
    """``me``, ``none`` or an agent's name -> the Agent (None for nobody).

    ``me`` registers the acting user as an agent if they are not in the table yet (as a lead
    when the desk had no agents at all, keeping the first-run rule).
    """
    w = who.strip()
    if w.lower() in ("none", "nobody", "-"):
        return None
    if w.lower() == "me":
        agent = find_agent(session, desk.agent)
        if agent is None:
            role = "lead" if agent_count(session) == 0 else "agent"
            agent = Agent(name=desk.agent, role=role)
            session.add(agent)
            session.flush()
            events.record(
                session, "agent_added", agent=desk.agent, name=desk.agent, role=role, auto=True
            )
        return agent
    agent = find_agent(session, w)
    if agent is None:
        names = known_names(session)
        hint = (
            f" (agents: {', '.join(names[:10])})" if names else " (no agents yet: see agents add)"
        )
        raise NotFound(f"there is no agent named {w!r}{hint}")
    if not agent.active:
        raise BadInput(f"agent {w!r} is inactive and cannot be assigned tickets")
    return agent


def agent_names(session: Session, ids: list[int]) -> dict[int, str]:
    return reads.agent_names(session_run(session), ids)
