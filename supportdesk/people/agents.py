"""Agents and roles.

The acting agent (``--as``, ``SUPPORTDESK_AGENT`` or the OS user) is looked up in the Agent
table. An agent who is not in the table acts as a plain agent, so a fresh desk works; a desk with
no agents at all treats the acting user as a lead, so the first person can set the desk up (the
first ``agents add`` is usually that person, as a lead).

Lead-only: merging and unmerging (tickets and customers), deleting (agents, templates, groups)
and any bulk action over ``BULK_LIMIT`` tickets.
"""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import Session, col, select

from supportdesk.core.text import iso
from supportdesk.desk import audit as events
from supportdesk.desk.desk import BadInput, Conflict, Desk, NotFound
from supportdesk.desk.permissions import ROLES, agent_count, find_agent, lead_count, require_lead
from supportdesk.store.models import Agent, Group

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


def ensure_group(session: Session, name: str) -> Group:
    from supportdesk.people.groups import check_group_name

    check_group_name(name)
    grp = session.exec(select(Group).where(Group.name == name)).first()
    if grp is None:
        grp = Group(name=name)
        session.add(grp)
        session.flush()
    return grp


def add_agent(
    desk: Desk,
    name: str,
    *,
    role: str = "agent",
    display_name: str = "",
    email: str | None = None,
    group: str | None = None,
) -> Agent:
    with desk.db.write() as session:
        if not _NAME.match(name):
            raise BadInput(
                f"{name!r} is not a valid agent name (letters, digits, '.', '_', '-', '@')"
            )
        if role not in ROLES:
            raise BadInput(f"the role is agent or lead, not {role!r}")
        if agent_count(session) > 0:
            require_lead(session, desk, "adding an agent")
        if find_agent(session, name) is not None:
            raise Conflict(f"agent {name!r} already exists")
        if lead_count(session) == 0:
            role = "lead"  # a desk always keeps a lead: the first agent added is one
        if group:
            ensure_group(session, group)
        agent = Agent(
            name=name, role=role, display_name=display_name, email=email, group=group or None
        )
        session.add(agent)
        session.flush()
        events.record(session, "agent_added", agent=desk.agent, name=name, role=role, group=group)
        return agent


def edit_agent(
    desk: Desk,
    name: str,
    *,
    role: str | None = None,
    display_name: str | None = None,
    email: str | None = None,
    group: str | None = None,
    active: bool | None = None,
    signature: str | None = None,
    signature_lang: str = "en",
) -> Agent:
    """Change an agent; ``signature`` ("" removes it) is kept per language (``signature_lang``)
    and added under the agent's replies in the customer's language."""
    with desk.db.write() as session:
        agent = find_agent(session, name)
        if agent is None:
            raise NotFound(f"there is no agent named {name!r}")
        if name != desk.agent or role is not None or active is not None:
            require_lead(session, desk, "changing another agent, a role or activity")
        before = agent_row(agent)
        if role is not None and role not in ROLES:
            raise BadInput(f"the role is agent or lead, not {role!r}")
        if (role not in (None, "lead") or active is False) and agent.role == "lead":
            _keep_a_lead(session, agent)
        if role is not None:
            agent.role = role
        if display_name is not None:
            agent.display_name = display_name
        if email is not None:
            agent.email = email or None
        if group is not None:
            if group and group.lower() != "none":
                ensure_group(session, group)
                agent.group = group
            else:
                agent.group = None
        if active is not None:
            agent.active = active
        if signature is not None:
            import json

            if signature_lang not in ("en", "ru"):
                raise BadInput(f"the signature language is en or ru, not {signature_lang!r}")
            if len(signature) > 2000:
                raise BadInput("the signature is longer than 2,000 characters")
            try:
                sigs = json.loads(agent.signature) if agent.signature else {}
            except ValueError:
                sigs = {}
            if signature:
                sigs[signature_lang] = signature.replace("\\n", "\n")
            else:
                sigs.pop(signature_lang, None)
            agent.signature = json.dumps(sigs, ensure_ascii=False) if sigs else ""
        session.add(agent)
        after = agent_row(agent)
        events.record(
            session,
            "agent_changed",
            agent=desk.agent,
            name=name,
            before={k: v for k, v in before.items() if after[k] != v},
            after={k: v for k, v in after.items() if before[k] != v},
        )
        return agent


def remove_agent(desk: Desk, name: str) -> Agent:
    """Deactivate an agent (their events and past assignments stay). Lead only."""
    with desk.db.write() as session:
        require_lead(session, desk, "deleting an agent")
        agent = find_agent(session, name)
        if agent is None:
            raise NotFound(f"there is no agent named {name!r}")
        if agent.role == "lead":
            _keep_a_lead(session, agent)
        agent.active = False
        session.add(agent)
        events.record(session, "agent_removed", agent=desk.agent, name=name)
        return agent


def _keep_a_lead(session: Session, agent: Agent) -> None:
    """Refuse to take the lead role from the desk's last active lead."""
    if agent.active and lead_count(session) <= 1:
        raise Conflict(f"{agent.name} is the desk's last lead; make another agent a lead first")


def list_agents(desk: Desk, *, include_inactive: bool = False) -> list[Agent]:
    with desk.db.read() as session:
        q = select(Agent).order_by(col(Agent.name))
        if not include_inactive:
            q = q.where(col(Agent.active).is_(True))
        return list(session.exec(q).all())


def agent_row(a: Agent) -> dict[str, Any]:
    return {
        "name": a.name, "display_name": a.display_name, "role": a.role, "email": a.email,
        "group": a.group, "active": a.active, "created_at": iso(a.created_at) if a.created_at else None,
    }  # fmt: skip


def agent_rows(agents: list[Agent]) -> list[dict[str, Any]]:
    return [agent_row(a) for a in agents]
