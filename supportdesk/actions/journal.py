"""The journal: every triage action is one batch, and ``undo`` reverts the last one exactly.

An action opens a batch (a Journal row) and writes events that carry the batch id and an
``undo`` key saying how to revert them:

- ``ticket_fields`` / ``customer_fields``: ``before`` and ``after`` of every column it changed;
- ``tags``: the tags it ``added`` and ``removed``;
- ``move``: the ``messages`` it moved ``from`` one ticket ``to`` another;
- ``ticket_created``: a ticket it created (split);
- ``identity_moved`` / ``identity_created`` / ``identity_deleted``: the identity graph;
- an internal ``note`` event written by the outbox for the batch (escalate, handover).

Undo walks the batch's events newest first. A "hard" field (status, assignee, group, a customer's
name...) that changed since the action makes undo refuse with a Conflict naming the ticket and
the field, rather than overwrite someone's later work. "Soft" bookkeeping fields (updated_at, due
times, counters) are restored when nothing touched them since, and recomputed otherwise.

Long because: every kind of recorded change (fields, tags, moved messages, identities, notes) is
recorded and reverted here, side by side, which is what keeps undo exact.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, SQLModel, col, func, select

from supportdesk.core.text import iso
from supportdesk.desk import audit as events
from supportdesk.desk.desk import Conflict, Desk, NotFound
from supportdesk.store.models import (
    AttachmentRow,
    Customer,
    Event,
    Identity,
    Journal,
    Message,
    Outbox,
    Tag,
    Ticket,
    TicketTag,
    UTCDateTime,
    utcnow,
)

HARD_TICKET = frozenset({
    "status", "priority", "priority_locked", "assignee_id", "group", "snoozed_until",
    "customer_id", "subject", "reply_to_address", "channel", "kind", "spam",
})  # fmt: skip
HARD_CUSTOMER = frozenset(
    {"name", "company", "phone", "language", "notes", "merged_into_id", "csat_opt_out"}
)
NICE = {
    "assignee_id": "assignee",
    "snoozed_until": "snooze",
    "merged_into_id": "merge",
    "reply_to_address": "reply address",
}


def _columns(model: type[SQLModel]) -> dict[str, bool]:
    """Column name -> is a datetime column."""
    table = model.__table__  # type: ignore[attr-defined]
    return {c.name: isinstance(c.type, UTCDateTime) for c in table.columns}


_TICKET_COLS = _columns(Ticket)
_CUSTOMER_COLS = _columns(Customer)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        v = value if value.tzinfo else value.replace(tzinfo=UTC)
        return v.astimezone(UTC).isoformat()
    return value


def _from_json(value: Any, is_dt: bool) -> Any:
    if is_dt and isinstance(value, str):
        return datetime.fromisoformat(value).astimezone(UTC)
    return value


def snapshot(obj: Ticket | Customer) -> dict[str, Any]:
    cols = _TICKET_COLS if isinstance(obj, Ticket) else _CUSTOMER_COLS
    return {name: _jsonable(getattr(obj, name)) for name in cols if name != "id"}


def from_to(src: Any, dst: Any) -> dict[str, Any]:
    """Event data for a move (``from`` is a keyword, so it cannot be a keyword argument)."""
    return {"from": src, "to": dst}


def diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = [k for k in after if before.get(k) != after[k]]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def new_batch(session: Session, desk: Desk, description: str) -> str:
    batch = uuid.uuid4().hex
    session.add(Journal(batch=batch, agent=desk.agent, description=description[:500]))
    return batch


def drop_batch_if_empty(session: Session, batch: str) -> bool:
    """Forget a batch that changed nothing (undo then reaches the action before it)."""
    session.flush()
    n = session.exec(select(func.count()).select_from(Event).where(Event.batch == batch)).one()
    if n:
        return False
    row = session.exec(select(Journal).where(Journal.batch == batch)).first()
    if row is not None:
        session.delete(row)
    return True


def record_fields(
    session: Session,
    desk: Desk,
    kind: str,
    obj: Ticket | Customer,
    before_snap: dict[str, Any],
    *,
    batch: str | None,
    **extra: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write a fields event for what changed on ``obj`` since ``before_snap``; returns the diff."""
    before, after = diff(before_snap, snapshot(obj))
    if not after:
        return before, after
    if isinstance(obj, Ticket):
        events.record(
            session,
            kind,
            agent=desk.agent,
            ticket_id=obj.id,
            batch=batch,
            undo="ticket_fields",
            before=before,
            after=after,
            **extra,
        )
        record_status(session, desk.agent, obj.id, before, after, batch=batch)
    else:
        events.record(
            session,
            kind,
            agent=desk.agent,
            customer_id=obj.id,
            batch=batch,
            undo="customer_fields",
            before=before,
            after=after,
            **extra,
        )
    return before, after


def record_status(
    session: Session,
    agent: str,
    ticket_id: int | None,
    before: dict[str, Any],
    after: dict[str, Any],
    *,
    batch: str | None,
) -> None:
    """A ``status`` event beside a fields event that moved the status.

    The status events are the ticket's status history: the report replays them (backlog as of
    a date, solves and reopens), so every path that changes a status writes one (a reply,
    intake's reopen, triage, automation, merge, spam, undo), not only the fields event that
    undo needs. It carries no ``undo`` key: undo reverts the fields event and writes its own.
    """
    if "status" not in after or ticket_id is None:
        return
    events.record(
        session,
        "status",
        agent=agent,
        ticket_id=ticket_id,
        batch=batch,
        before=before.get("status"),
        after=after["status"],
    )


def tag_ids(session: Session, names: list[str], *, create: bool) -> dict[str, int]:
    out: dict[str, int] = {}
    for name in names:
        tag = session.exec(select(Tag).where(Tag.name == name)).first()
        if tag is None and create:
            tag = Tag(name=name)
            session.add(tag)
            session.flush()
        if tag is not None and tag.id is not None:
            out[name] = tag.id
    return out


def set_tags(session: Session, ticket_id: int, add: list[str], remove: list[str]) -> None:
    for _name, tid in tag_ids(session, add, create=True).items():
        if session.get(TicketTag, (ticket_id, tid)) is None:
            session.add(TicketTag(ticket_id=ticket_id, tag_id=tid))
    for _name, tid in tag_ids(session, remove, create=False).items():
        row = session.get(TicketTag, (ticket_id, tid))
        if row is not None:
            session.delete(row)
    session.flush()


def recount(session: Session, ticket: Ticket) -> None:
    """Message counters from the messages themselves."""
    assert ticket.id is not None
    n = session.exec(
        select(func.count()).select_from(Message).where(Message.ticket_id == ticket.id)
    ).one()
    last = session.exec(
        select(Message.id).where(Message.ticket_id == ticket.id).order_by(col(Message.id).desc())
    ).first()
    ticket.message_count = int(n)
    ticket.last_message_id = last
    session.add(ticket)


@dataclass
class UndoResult:
    batch: str
    description: str
    agent: str
    created_at: datetime | None
    tickets: list[int] = field(default_factory=list)
    customers: list[int] = field(default_factory=list)
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch": self.batch, "action": self.description, "agent": self.agent,
            "created_at": _jsonable(self.created_at), "tickets": self.tickets,
            "customers": self.customers, "dry_run": self.dry_run,
        }  # fmt: skip


def last_action(session: Session, agent: str) -> Journal | None:
    return session.exec(
        select(Journal)
        .where(Journal.agent == agent, col(Journal.undone_at).is_(None))
        .order_by(col(Journal.id).desc())
    ).first()


def recent(desk: Desk, agent: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The newest journaled actions (of one agent), newest first, as rows."""
    q = select(Journal).order_by(col(Journal.id).desc()).limit(limit)
    if agent is not None:
        q = q.where(Journal.agent == agent)
    with desk.db.read() as session:
        return [
            {"batch": j.batch, "agent": j.agent, "action": j.description,
             "created_at": iso(j.created_at), "undone_at": iso(j.undone_at)}
            for j in session.exec(q).all()
        ]  # fmt: skip


def _show(name: str, value: Any) -> str:
    return f"{NICE.get(name, name)} {value if value not in (None, '') else '(none)'}"


class _Undoer:
    def __init__(self, session: Session, desk: Desk, journal: Journal):
        self.s = session
        self.desk = desk
        self.journal = journal
        self.recount: set[int] = set()
        self.tickets: set[int] = set()
        self.customers: set[int] = set()
        self.drop_tickets: list[int] = []

    def ticket(self, tid: int | None) -> Ticket:
        t = self.s.get(Ticket, tid) if tid is not None else None
        if t is None:
            raise Conflict(f"ticket #{tid} no longer exists, so the action cannot be undone")
        return t

    def fields(self, ev: Event, data: dict[str, Any], obj: Ticket | Customer) -> None:
        is_ticket = isinstance(obj, Ticket)
        cols = _TICKET_COLS if is_ticket else _CUSTOMER_COLS
        hard = HARD_TICKET if is_ticket else HARD_CUSTOMER
        what = f"ticket #{obj.id}" if is_ticket else f"customer {obj.id}"
        now = snapshot(obj)
        before, after = data.get("before", {}), data.get("after", {})
        for name, value in after.items():
            if name in hard and name in now and now[name] != value:
                raise Conflict(
                    f"{what} changed since the action ({_show(name, now[name])}, the action set "
                    f"{_show(name, value)}); undo would overwrite that"
                )
        for name, value in before.items():
            if name not in cols:
                continue
            if name in hard or now.get(name) == after.get(name):
                setattr(obj, name, _from_json(value, cols[name]))
        if isinstance(obj, Ticket):
            if "status" in before and obj.status != now.get("status"):
                record_status(
                    self.s, self.desk.agent, obj.id, {"status": now.get("status")},
                    {"status": obj.status}, batch=None,
                )  # fmt: skip
            if "due_at" in before and now.get("due_at") != after.get("due_at"):
                from supportdesk.sla import clocks as sla

                sla.refresh_due(obj)  # the clock moved on since: recompute instead
            self.tickets.add(obj.id or 0)
        else:
            self.customers.add(obj.id or 0)
        self.s.add(obj)

    def apply(self, ev: Event) -> None:
        data: dict[str, Any] = json.loads(ev.data or "{}")
        how = data.get("undo")
        if how == "ticket_fields":
            self.fields(ev, data, self.ticket(ev.ticket_id))
        elif how == "customer_fields":
            cust = self.s.get(Customer, ev.customer_id) if ev.customer_id else None
            if cust is None:
                raise Conflict(
                    f"customer {ev.customer_id} no longer exists, so the action cannot be undone"
                )
            self.fields(ev, data, cust)
        elif how == "tags":
            t = self.ticket(ev.ticket_id)
            set_tags(self.s, t.id or 0, list(data.get("removed", [])), list(data.get("added", [])))
            self.tickets.add(t.id or 0)
        elif how == "move":
            src, dst = int(data["from"]), int(data["to"])
            for mid in data.get("messages", []):
                m = self.s.get(Message, mid)
                if m is None or m.ticket_id != dst:
                    where = "was deleted" if m is None else f"is now on ticket #{m.ticket_id}"
                    raise Conflict(
                        f"message {mid} {where}, not on ticket #{dst}; undo would lose track of it"
                    )
                m.ticket_id = src
                self.s.add(m)
            self.s.flush()
            from supportdesk.search import index as search_index

            for mid in data.get("messages", []):
                m = self.s.get(Message, mid)
                back = self.s.get(Ticket, src)
                if m is not None and back is not None:
                    search_index.index_message(self.s, m, back)
            self.recount.update((src, dst))
            self.tickets.update((src, dst))
        elif how == "ticket_created":
            self.drop_tickets.append(int(data["ticket"]))
        elif how == "identity_moved":
            ident = self.s.get(Identity, data["identity"])
            if ident is None or ident.customer_id != data["to"]:
                raise Conflict(
                    f"the identity {data.get('address', '')} moved again since; undo would overwrite that"
                )
            ident.customer_id = int(data["from"])
            self.s.add(ident)
            self.customers.update((int(data["from"]), int(data["to"])))
        elif how == "identity_created":
            ident = self.s.get(Identity, data["identity"])
            if ident is not None:
                self.s.delete(ident)
            self.customers.add(int(data["customer"]))
        elif how == "identity_deleted":
            existing = self.s.exec(
                select(Identity).where(
                    Identity.kind == data["identity_kind"], Identity.address == data["address"]
                )
            ).first()
            if existing is not None:
                raise Conflict(
                    f"the identity {data['identity_kind']}:{data['address']} exists again (customer "
                    f"{existing.customer_id}); undo would duplicate it"
                )
            self.s.add(
                Identity(
                    customer_id=int(data["customer"]),
                    kind=data["identity_kind"],
                    address=data["address"],
                    display=data.get("display", ""),
                )
            )
            self.customers.add(int(data["customer"]))
        elif ev.kind == "note" and ev.message_id is not None:
            m = self.s.get(Message, ev.message_id)
            if m is not None:
                for a in self.s.exec(
                    select(AttachmentRow).where(AttachmentRow.message_id == m.id)
                ).all():
                    self.s.delete(a)
                self.s.delete(m)
                self.s.flush()
            if ev.ticket_id is not None:
                self.recount.add(ev.ticket_id)
                self.tickets.add(ev.ticket_id)

    def finish(self) -> None:
        self.s.flush()
        for tid in sorted(self.recount):
            t = self.s.get(Ticket, tid)
            if t is None:
                continue
            n = self.s.exec(
                select(func.count()).select_from(Message).where(Message.ticket_id == tid)
            ).one()
            ids = set(self.s.exec(select(Message.id).where(Message.ticket_id == tid)).all())
            if t.message_count != n or (
                t.last_message_id is not None and t.last_message_id not in ids
            ):
                recount(self.s, t)
        for tid in self.drop_tickets:
            self._drop_ticket(tid)

    def _drop_ticket(self, tid: int) -> None:
        t = self.s.get(Ticket, tid)
        if t is None:
            return
        left = self.s.exec(
            select(func.count()).select_from(Message).where(Message.ticket_id == tid)
        ).one()
        if left:
            raise Conflict(
                f"ticket #{tid} has new messages since the action; undo would delete them"
            )
        outbox = self.s.exec(
            select(func.count()).select_from(Outbox).where(Outbox.ticket_id == tid)
        ).one()
        others = self.s.exec(
            select(func.count())
            .select_from(Event)
            .where(Event.ticket_id == tid, sa_or_null_ne(Event.batch, self.journal.batch))
        ).one()
        if outbox or others:
            raise Conflict(
                f"ticket #{tid} was worked on since the action; undo would delete that work"
            )
        for row in self.s.exec(select(TicketTag).where(TicketTag.ticket_id == tid)).all():
            self.s.delete(row)
        for ev in self.s.exec(
            select(Event).where(Event.ticket_id == tid, Event.batch == self.journal.batch)
        ).all():
            self.s.delete(ev)
        self.s.delete(t)
        self.tickets.discard(tid)


def sa_or_null_ne(column: Any, value: str) -> Any:
    import sqlalchemy as sa

    return sa.or_(col(column).is_(None), col(column) != value)


def undo_last(
    session: Session, desk: Desk, *, of: str | None = None, dry_run: bool = False
) -> UndoResult:
    """Revert the acting agent's last action that was not undone yet, in the caller's transaction.

    ``of`` names another agent whose last action to revert (lead only); ``dry_run`` only says
    which action would be reverted.
    """
    from supportdesk.desk.permissions import require_lead

    who = of or desk.agent
    if who != desk.agent:
        require_lead(session, desk, f"undoing {who}'s action")
    journal = last_action(session, who)
    if journal is None:
        raise NotFound(f"{who} has no action to undo")
    evs = session.exec(
        select(Event).where(Event.batch == journal.batch).order_by(col(Event.id).desc())
    ).all()
    if dry_run:
        return UndoResult(
            journal.batch, journal.description, journal.agent, journal.created_at,
            sorted({e.ticket_id for e in evs if e.ticket_id is not None}),
            sorted({e.customer_id for e in evs if e.customer_id is not None}),
            dry_run=True,
        )  # fmt: skip
    u = _Undoer(session, desk, journal)
    for ev in evs:
        u.apply(ev)
    u.finish()
    now = utcnow()
    journal.undone_at = now
    session.add(journal)
    for tid in sorted(u.tickets):
        events.record(
            session,
            "undo",
            agent=desk.agent,
            ticket_id=tid,
            of=journal.batch,
            action=journal.description,
            at=now,
        )
    for cid in sorted(u.customers):
        events.record(
            session,
            "undo",
            agent=desk.agent,
            customer_id=cid,
            of=journal.batch,
            action=journal.description,
            at=now,
        )
    return UndoResult(
        journal.batch,
        journal.description,
        journal.agent,
        journal.created_at,
        sorted(u.tickets),
        sorted(u.customers),
    )


def undo(desk: Desk, *, of: str | None = None, dry_run: bool = False) -> UndoResult:
    if dry_run:
        with desk.db.read() as s:
            return undo_last(s, desk, of=of, dry_run=True)
    with desk.db.write() as s:
        return undo_last(s, desk, of=of)
