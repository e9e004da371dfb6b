"""Thread repair: merge tickets, split messages off into a new ticket, move messages between
tickets. Each is one journal batch (``supportdesk undo`` reverts it); merging tickets of two
customers is a lead's deliberate act.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from supportdesk.actions.batch import ActionResult, _load, describe_ids, execute
from supportdesk.actions.journal import (
    diff,
    from_to,
    record_fields,
    record_status,
    recount,
    snapshot,
)
from supportdesk.desk import audit as events
from supportdesk.desk.desk import BadInput, Conflict, Desk, NotFound
from supportdesk.desk.permissions import require_bulk, require_lead
from supportdesk.desk.records import get_ticket
from supportdesk.outbound.outbox import delivery_of
from supportdesk.sla import clocks as sla
from supportdesk.store.models import (
    Message,
    Ticket,
    utcnow,
)
from supportdesk.tickets.read import tags_of
from supportdesk.tickets.triage import change_tags, check_not_merged, set_status


def _move_messages(
    session: Session, desk: Desk, msgs: list[Message], src: Ticket, dst: Ticket, batch: str
) -> None:
    from supportdesk.search import index as search_index

    ids = [m.id or 0 for m in msgs]
    for m in msgs:
        m.ticket_id = dst.id or 0
        session.add(m)
    session.flush()
    for m in msgs:
        search_index.index_message(session, m, dst)
    events.record(
        session,
        "move",
        agent=desk.agent,
        ticket_id=dst.id,
        batch=batch,
        undo="move",
        messages=ids,
        **from_to(src.id, dst.id),
    )


def _timestamps_from_messages(session: Session, t: Ticket) -> None:
    msgs = session.exec(select(Message).where(Message.ticket_id == t.id)).all()
    ins = [m.created_at for m in msgs if m.direction == "in"]
    outs = [m.created_at for m in msgs if m.direction == "out" and not m.is_auto]
    t.last_customer_at = max(ins) if ins else None
    t.last_agent_at = max(outs) if outs else None
    # the first response is the first delivered reply (history without an outbox row counts)
    sent = delivery_of(session, [m.id or 0 for m in msgs if m.direction == "out"])
    delivered = [
        (sent[m.id or 0].sent_at or m.created_at) if (m.id or 0) in sent else m.created_at
        for m in msgs
        if m.direction == "out"
        and not m.is_auto
        and ((m.id or 0) not in sent or sent[m.id or 0].state == "sent")
    ]
    if delivered:
        t.first_response_at = min(delivered)
    if msgs:
        t.updated_at = max([t.updated_at, *(m.created_at for m in msgs)])


def merge_customers(desk: Desk, sources: list[int], into: int) -> dict[int, tuple[int, str]]:
    """Each ticket's customer (id, name) for a merge's confirmation: ``{ticket: (id, name)}``."""
    with desk.db.read() as s:
        return _customers_of(s, [*sources, into])


def _customers_of(s: Session, ids: list[int]) -> dict[int, tuple[int, str]]:
    from supportdesk.desk.identity import resolve_customer
    from supportdesk.store.models import Identity

    out: dict[int, tuple[int, str]] = {}
    for tid in ids:
        c = resolve_customer(s, get_ticket(s, tid).customer_id)
        name = c.name or next(
            iter(s.exec(select(Identity.address).where(Identity.customer_id == c.id)).all()), ""
        )
        out[tid] = (c.id or 0, name or f"customer {c.id}")
    return out


def merge(
    desk: Desk,
    sources: list[int],
    into: int,
    *,
    dry_run: bool = False,
    different_customers: bool = False,
) -> ActionResult:
    """Merge tickets into ``into``: their messages and tags move, they close as "merged:<id>".

    Tickets of different customers merge only with ``different_customers`` (the caller asked
    about exactly that); replies afterwards go to whoever wrote the message answered.
    """
    if into in sources:
        raise BadInput(f"ticket #{into} cannot be merged into itself")
    if not sources:
        raise BadInput("name the tickets to merge")

    def work(s: Session, batch: str) -> list[int]:
        require_lead(s, desk, "merging tickets")
        require_bulk(s, desk, len(sources), "merge")
        target = get_ticket(s, into)
        check_not_merged(target)
        srcs = _load(s, sources)
        whose = _customers_of(s, [*sources, into])
        others = [t for t in sources if whose[t][0] != whose[into][0]]
        if others and not different_customers:
            other = others[0]
            raise Conflict(
                f"ticket #{other} ({whose[other][1]}) and ticket #{into} ({whose[into][1]}) belong "
                "to different customers; a merge of different customers must be confirmed as such"
            )
        for src in srcs:
            check_not_merged(src)
            snap_src, snap_dst = snapshot(src), snapshot(target)
            msgs = list(
                s.exec(
                    select(Message).where(Message.ticket_id == src.id).order_by(col(Message.id))
                ).all()
            )
            if msgs:
                _move_messages(s, desk, msgs, src, target, batch)
            src_tags = tags_of(s, [src.id or 0]).get(src.id or 0, [])
            if src_tags:
                change_tags(s, desk, target, src_tags, [], batch=batch, kind="merge")
            now = utcnow()
            set_status(src, "closed", now, desk=desk, session=s)
            src.reply_to_address = f"merged:{target.id}"
            src.snoozed_until = None
            recount(s, src)
            recount(s, target)
            _timestamps_from_messages(s, target)
            if target.status in ("solved", "closed") and any(m.direction == "in" for m in msgs):
                set_status(target, "open", now, desk=desk, session=s)
            sla.refresh_due(target)
            s.add(src)
            s.add(target)
            record_fields(s, desk, "merge", src, snap_src, batch=batch, into=target.id)
            _record_target(s, desk, target, snap_dst, batch, src.id or 0)
        return [*sources, into]

    return execute(
        desk, "merge", f"merge {describe_ids(sources)} into #{into}", work, dry_run=dry_run
    )


def _record_target(
    s: Session, desk: Desk, target: Ticket, snap: dict[str, Any], batch: str, src: int
) -> None:
    before, after = diff(snap, snapshot(target))
    if after:
        events.record(
            s,
            "merge",
            agent=desk.agent,
            ticket_id=target.id,
            batch=batch,
            undo="ticket_fields",
            before=before,
            after=after,
            merged=src,
        )
        record_status(s, desk.agent, target.id, before, after, batch=batch)


def _messages(session: Session, message_ids: list[int]) -> list[Message]:
    if not message_ids:
        raise BadInput("name at least one message by its id", field="message")
    msgs = [session.get(Message, i) for i in message_ids]
    missing = [str(i) for i, m in zip(message_ids, msgs, strict=True) if m is None]
    if missing:
        raise NotFound(f"message {', '.join(missing)} does not exist")
    return [m for m in msgs if m is not None]


def split(
    desk: Desk, message_ids: list[int], *, subject: str | None = None, dry_run: bool = False
) -> ActionResult:
    """Move messages of one ticket into a new ticket of the same customer."""

    def work(s: Session, batch: str) -> list[int]:
        from supportdesk.channels.email.subject import clean_subject
        from supportdesk.desk.identity import normalize_email

        msgs = _messages(s, message_ids)
        src_ids = {m.ticket_id for m in msgs}
        if len(src_ids) > 1:
            raise BadInput(
                "the messages to split come from different tickets; split one ticket at a time"
            )
        src = get_ticket(s, src_ids.pop())
        check_not_merged(src)
        total = s.exec(select(Message.id).where(Message.ticket_id == src.id)).all()
        if len(total) <= len(msgs):
            raise BadInput(f"ticket #{src.id} would be left empty; split off fewer messages")
        first = min(msgs, key=lambda m: (m.created_at, m.id or 0))
        reply_to = src.reply_to_address
        if src.kind == "email" and first.direction == "in" and first.author_address:
            reply_to = normalize_email(first.author_address)
        snap_src = snapshot(src)
        new = Ticket(
            subject=(subject or clean_subject(first.subject) or f"Split from #{src.id}")[:300],
            status="open",
            priority=src.priority,
            priority_rank=src.priority_rank,
            channel=src.channel,
            kind=src.kind,
            customer_id=first.customer_id or src.customer_id,
            group=src.group,
            created_at=first.created_at,
            updated_at=utcnow(),
            reply_to_address=reply_to,
        )
        s.add(new)
        s.flush()
        sla.apply_due_times(desk.config, new)
        events.record(
            s,
            "split",
            agent=desk.agent,
            ticket_id=new.id,
            batch=batch,
            undo="ticket_created",
            ticket=new.id,
            split_from=src.id,
        )
        _move_messages(s, desk, sorted(msgs, key=lambda m: m.id or 0), src, new, batch)
        for t in (src, new):
            recount(s, t)
            _timestamps_from_messages(s, t)
            sla.refresh_due(t)
            s.add(t)
        record_fields(s, desk, "split", src, snap_src, batch=batch, into=new.id)
        return [src.id or 0, new.id or 0]

    return execute(
        desk,
        "split",
        f"split message {describe_ids(message_ids, '')} into a new ticket",
        work,
        dry_run=dry_run,
    )


def move(desk: Desk, message_ids: list[int], to: int, *, dry_run: bool = False) -> ActionResult:
    """Move messages to another ticket."""

    def work(s: Session, batch: str) -> list[int]:
        msgs = _messages(s, message_ids)
        dst = get_ticket(s, to)
        check_not_merged(dst)
        by_src: dict[int, list[Message]] = {}
        for m in msgs:
            if m.ticket_id == to:
                raise BadInput(f"message {m.id} is already on ticket #{to}")
            by_src.setdefault(m.ticket_id, []).append(m)
        for src_id, group in by_src.items():
            src = get_ticket(s, src_id)
            left = s.exec(select(Message.id).where(Message.ticket_id == src_id)).all()
            if len(left) <= len(group):
                raise BadInput(f"ticket #{src_id} would be left empty; merge it into #{to} instead")
            snap_src, snap_dst = snapshot(src), snapshot(dst)
            _move_messages(s, desk, group, src, dst, batch)
            for t in (src, dst):
                recount(s, t)
                _timestamps_from_messages(s, t)
                sla.refresh_due(t)
                s.add(t)
            record_fields(s, desk, "move", src, snap_src, batch=batch, to=to)
            _record_target(s, desk, dst, snap_dst, batch, src_id)
        return [*by_src.keys(), to]

    return execute(
        desk,
        "move",
        f"move message {describe_ids(message_ids, '')} to #{to}",
        work,
        dry_run=dry_run,
    )
