"""What a rule or macro does to one ticket, in the caller's transaction and journal batch.

Every change goes through the same journaled helpers a person's action uses (``record_fields``,
``change_tags``, ``set_status``, ``queue_outbound``), with the desk's acting agent set to the
rule (``rule:NAME``) or macro, so the audit log names it and ``undo`` reverts it.
Each function returns a short line saying what it did ('' when nothing changed).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from supportdesk.actions.journal import record_fields, snapshot
from supportdesk.automation import routing, spam
from supportdesk.automation.rules import Action, _list
from supportdesk.desk import audit as events
from supportdesk.desk.desk import BadInput, Desk, NotFound
from supportdesk.desk.permissions import find_agent, resolve_assignee
from supportdesk.store.models import PRIORITIES, PRIORITY_RANK, Agent, Group, Ticket


def run_actions(
    session: Session,
    desk: Desk,
    ticket: Ticket,
    actions: list[Action],
    *,
    batch: str,
    now: datetime,
    source: str,
) -> list[str]:
    """Apply ``actions`` in order; returns one line per action that changed something."""
    done: list[str] = []
    for a in actions:
        line = _one(session, desk, ticket, a, batch=batch, now=now, source=source)
        if line:
            done.append(line)
    return done


def _one(
    s: Session, desk: Desk, t: Ticket, a: Action, *, batch: str, now: datetime, source: str
) -> str:
    args = a.args
    if a.action == "assign":
        return _assign(s, desk, t, args, batch=batch, now=now)
    if a.action == "group":
        name = str(args["group"])
        if s.exec(select(Group).where(Group.name == name)).first() is None:
            raise NotFound(f"there is no group named {name!r}")
        if t.group == name:
            return ""
        snap = snapshot(t)
        t.group = name
        t.updated_at = max(t.updated_at, now)
        s.add(t)
        record_fields(s, desk, "group", t, snap, batch=batch)
        return f"group {name}"
    if a.action in ("status", "close"):
        from supportdesk.tickets.triage import set_status

        new = (
            str(args["status"]).lower()
            if a.action == "status"
            else ("solved" if args.get("solved") else "closed")
        )
        if t.status == new:
            return ""
        snap = snapshot(t)
        set_status(t, new, now, desk=desk, session=s)
        s.add(t)
        record_fields(s, desk, "set" if a.action == "status" else "close", t, snap, batch=batch)
        return f"status {new}"
    if a.action == "priority":
        from supportdesk.sla import clocks as sla

        p = str(args["priority"]).lower()
        if p not in PRIORITIES:
            raise BadInput(f"the priority is one of {', '.join(PRIORITIES)}, not {p!r}")
        if t.priority == p:
            return ""
        snap = snapshot(t)
        t.priority = p
        t.priority_rank = PRIORITY_RANK[p]
        t.updated_at = max(t.updated_at, now)
        sla.apply_due_times(desk.config, t)
        s.add(t)
        record_fields(s, desk, "set", t, snap, batch=batch)
        return f"priority {p}"
    if a.action == "tag":
        from supportdesk.tickets.triage import change_tags, normalize_tag

        add = [normalize_tag(x) for x in _list(args.get("add"))]
        rem = [normalize_tag(x) for x in _list(args.get("remove"))]
        added, removed = change_tags(s, desk, t, add, rem, batch=batch)
        if not added and not removed:
            return ""
        return "tag " + " ".join([*(f"+{x}" for x in added), *(f"-{x}" for x in removed)])
    if a.action in ("reply", "note"):
        return _reply(s, desk, t, args, note=a.action == "note", batch=batch, now=now)
    if a.action == "notify":
        return queue_for_rule(s, desk, t, args, source=source)
    if a.action == "spam":
        if t.spam and t.status == "closed" and not (args.get("sender") or args.get("domain")):
            return ""
        spam.mark_ticket(s, desk, t, batch, now)
        line = "spam"
        if args.get("sender") or args.get("domain"):
            addr = spam.sender_of(s, t)
            if addr:
                entry = "@" + addr.rsplit("@", 1)[1] if args.get("domain") else addr
                line += f" (listed {spam.add_entry(s, desk, entry)})"
        return line
    raise BadInput(f"unknown action {a.action!r}")


def _assign(
    s: Session, desk: Desk, t: Ticket, args: dict[str, Any], *, batch: str, now: datetime
) -> str:
    to = str(args["to"]).strip()
    group = args.get("group") or None
    why = ""
    if to.lower() in routing.STRATEGIES:
        if t.assignee_id is not None:
            return ""  # routing fills empty seats; it does not take tickets from people
        agent, why = routing.pick_agent(
            s, desk, to.lower(), group=group or t.group, cap=args.get("cap"), now=now
        )
        if agent is None:
            events.record(
                s, "routing_skipped", agent=desk.agent, ticket_id=t.id, batch=batch, reason=why
            )
            return f"assign: nobody ({why})"
    else:
        agent = resolve_assignee(s, desk, to)
    target = agent.id if agent is not None else None
    if t.assignee_id == target:
        return ""
    snap = snapshot(t)
    t.assignee_id = target
    if group and not t.group:
        t.group = str(group)
    t.updated_at = max(t.updated_at, now)
    s.add(t)
    record_fields(s, desk, "assign", t, snap, batch=batch, **({"reason": why} if why else {}))
    return f"assign {agent.name if agent else 'none'}" + (f" ({why})" if why else "")


def _reply(
    s: Session,
    desk: Desk,
    t: Ticket,
    args: dict[str, Any],
    *,
    note: bool,
    batch: str,
    now: datetime,
) -> str:
    from supportdesk.outbound.outbox import queue_outbound
    from supportdesk.replies import templating

    if t.spam and not note:
        return ""  # spam gets nothing back
    name = args.get("template")
    if name:
        from supportdesk.replies.templates import render_template

        _subject, text = render_template(s, desk, str(name), t, count_use=True)
    else:
        text = templating.render_text(s, desk, str(args.get("text", "")), t, strict=False)
    queue_outbound(
        s, desk, t, text, agent=desk.agent, note=note, auto=not note, batch=batch, at=now
    )
    what = f"template {name}" if name else "text"
    return f"{'note' if note else 'reply'} ({what})"


def notify_targets(s: Session, t: Ticket, to: str) -> list[str]:
    """``assignee`` (default), ``group`` (its active agents) or agent names (comma-separated)."""
    names: list[str] = []
    for part in _list(to or "assignee"):
        if part == "assignee":
            if t.assignee_id is not None:
                a = s.get(Agent, t.assignee_id)
                if a is not None:
                    names.append(a.name)
        elif part == "group":
            if t.group:
                names.extend(
                    s.exec(
                        select(Agent.name).where(
                            Agent.group == t.group, col(Agent.active).is_(True)
                        )
                    ).all()
                )
        elif find_agent(s, part) is not None:
            names.append(part)
        else:
            raise NotFound(f"there is no agent named {part!r} to notify")
    return list(dict.fromkeys(names))


def queue_for_rule(s: Session, desk: Desk, t: Ticket, args: dict[str, Any], *, source: str) -> str:
    from supportdesk.automation import notify

    names = notify_targets(s, t, str(args.get("to", "assignee")))
    if not names:
        return ""
    text = str(args.get("text", "") or "")
    if text:
        from supportdesk.replies import templating

        text = templating.render_text(s, desk, text, t, strict=False)
    for n in names:
        notify.queue(s, n, "rule", t, agent=desk.agent, text=text, source=source)
    return f"notify {', '.join(names)}"
