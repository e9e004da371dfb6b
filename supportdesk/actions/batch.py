"""One action, one journal batch: ``execute`` runs the work, collects what changed, and honours
``--dry-run``; ``for_each`` applies an operation to many tickets as one undoable action."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from supportdesk.actions.journal import drop_batch_if_empty, new_batch
from supportdesk.desk.desk import BadInput, Desk, NotFound
from supportdesk.desk.permissions import agent_names, require_bulk, require_lead
from supportdesk.store.models import Event, Message, Ticket

SHOWN_FIELDS = (
    "status",
    "priority",
    "assignee_id",
    "group",
    "snoozed_until",
    "reply_to_address",
    "customer_id",
)


@dataclass
class Change:
    target: str  # "ticket" | "customer"
    id: int
    field: str
    before: Any
    after: Any

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "id": self.id,
            "field": self.field,
            "before": self.before,
            "after": self.after,
        }


@dataclass
class ActionResult:
    action: str
    description: str
    dry_run: bool
    batch: str | None
    tickets: list[int] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    created: list[int] = field(default_factory=list)

    @property
    def changed_tickets(self) -> list[int]:
        return sorted({c.id for c in self.changes if c.target == "ticket"})

    @property
    def unchanged(self) -> list[int]:
        ch = set(self.changed_tickets)
        return [t for t in self.tickets if t not in ch]

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action, "description": self.description, "dry_run": self.dry_run,
            "batch": self.batch, "tickets": self.tickets, "changed": self.changed_tickets,
            "unchanged": self.unchanged, "created": self.created,
            "changes": [c.as_dict() for c in self.changes],
        }  # fmt: skip


class _DryRun(Exception):
    def __init__(self, result: ActionResult):
        super().__init__("dry run")
        self.result = result


def _changes(session: Session, batch: str) -> list[Change]:
    session.flush()
    evs = session.exec(select(Event).where(Event.batch == batch).order_by(col(Event.id))).all()
    out: list[Change] = []
    agent_ids: set[int] = set()
    for ev in evs:
        d = json.loads(ev.data or "{}")
        for side in ("before", "after"):
            if isinstance(d.get(side), dict) and d[side].get("assignee_id"):
                agent_ids.add(int(d[side]["assignee_id"]))
    names = agent_names(session, sorted(agent_ids))
    for ev in evs:
        d = json.loads(ev.data or "{}")
        how = d.get("undo")
        if how in ("ticket_fields", "customer_fields"):
            target = "ticket" if how == "ticket_fields" else "customer"
            oid = ev.ticket_id if target == "ticket" else ev.customer_id
            for name, after in d["after"].items():
                before = d["before"].get(name)
                if target == "ticket" and name not in SHOWN_FIELDS:
                    continue
                if target == "customer" and name in ("updated_at", "created_at"):
                    continue
                if name == "assignee_id":
                    name, before, after = "assignee", names.get(before or 0), names.get(after or 0)
                out.append(Change(target, oid or 0, name, before, after))
        elif how == "tags":
            out.append(
                Change(
                    "ticket", ev.ticket_id or 0, "tags", d.get("before_tags"), d.get("after_tags")
                )
            )
        elif how == "move":
            for mid in d.get("messages", []):
                out.append(
                    Change(
                        "ticket", int(d["from"]), f"message {mid}", f"#{d['from']}", f"#{d['to']}"
                    )
                )
                out.append(
                    Change("ticket", int(d["to"]), f"message {mid}", f"#{d['from']}", f"#{d['to']}")
                )
        elif how == "ticket_created":
            out.append(Change("ticket", int(d["ticket"]), "ticket", None, "created"))
        elif how in ("identity_moved", "identity_created", "identity_deleted"):
            cid = int(d.get("to") or d.get("customer") or 0)
            addr = f"{d.get('identity_kind', '')}:{d.get('address', '')}".strip(":")
            if how == "identity_moved":
                out.append(Change("customer", int(d["from"]), "identity", addr, None))
                out.append(Change("customer", cid, "identity", None, addr))
            elif how == "identity_created":
                out.append(Change("customer", cid, "identity", None, addr))
            else:
                out.append(Change("customer", cid, "identity", addr, None))
        elif ev.kind == "note" and ev.message_id is not None:
            msg = session.get(Message, ev.message_id)
            out.append(
                Change("ticket", ev.ticket_id or 0, "note", None, (msg.text if msg else "")[:80])
            )
    return out


def execute(
    desk: Desk,
    action: str,
    description: str,
    work: Callable[[Session, str], list[int]],
    *,
    dry_run: bool = False,
) -> ActionResult:
    """Run ``work(session, batch)`` as one journal batch; it returns the ticket ids it looked at."""
    try:
        with desk.db.write() as s:
            batch = new_batch(s, desk, description)
            looked_at = work(s, batch)
            changes = _changes(s, batch)
            created = [c.id for c in changes if c.field == "ticket" and c.after == "created"]
            result = ActionResult(action, description, dry_run, batch, looked_at, changes, created)
            if dry_run:
                raise _DryRun(result)
            if drop_batch_if_empty(s, batch):
                result.batch = None
            return result
    except _DryRun as dry:
        dry.result.batch = None
        return dry.result


def _load(session: Session, ids: list[int]) -> list[Ticket]:
    tickets = [session.get(Ticket, i) for i in ids]
    missing = [f"#{i}" for i, t in zip(ids, tickets, strict=True) if t is None]
    if missing:
        if len(missing) == 1:
            raise NotFound(f"ticket {missing[0]} does not exist")
        raise NotFound(f"tickets {', '.join(missing[:10])} do not exist")
    return [t for t in tickets if t is not None]


def for_each(
    desk: Desk,
    action: str,
    description: str,
    ids: list[int],
    op: Callable[[Session, Ticket, str], None],
    *,
    dry_run: bool = False,
    lead_only: str | None = None,
    prepare: Callable[[Session], None] | None = None,
) -> ActionResult:
    """Apply ``op(session, ticket, batch)`` to every ticket in ``ids`` as one undoable action."""
    if not ids:
        raise BadInput("no ticket IDs were given")

    def work(s: Session, batch: str) -> list[int]:
        if lead_only:
            require_lead(s, desk, lead_only)
        require_bulk(s, desk, len(ids), action)
        tickets = _load(s, ids)
        if prepare is not None:
            prepare(s)
        for t in tickets:
            op(s, t, batch)
        return ids

    return execute(desk, action, description, work, dry_run=dry_run)


def describe_ids(ids: list[int], hash_: str = "#") -> str:
    shown = ", ".join(f"{hash_}{i}" for i in ids[:5])
    return shown + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
