"""Triage: assign, tag, set status/priority, close, reopen, snooze, merge, split, move, reply, new.

Every action over tickets runs in one write transaction as one journal batch (see journal.py):
``supportdesk undo`` reverts it exactly. ``dry_run=True`` performs the action inside the
transaction, reports what changed, and rolls everything back, so the preview is exactly what the
real run would do.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from supportdesk.actions.batch import ActionResult, _load, execute, for_each
from supportdesk.actions.journal import (
    diff,
    from_to,
    record_fields,
    recount,
    set_tags,
    snapshot,
)
from supportdesk.desk import audit as events
from supportdesk.desk.desk import BadInput, Conflict, Desk, NotFound
from supportdesk.desk.permissions import require_bulk, require_lead, resolve_assignee
from supportdesk.desk.records import get_ticket
from supportdesk.outbound.outbox import delivery_of
from supportdesk.sla import clocks as sla
from supportdesk.store.models import (
    OPEN_STATUSES,
    PRIORITIES,
    PRIORITY_RANK,
    STATUSES,
    Message,
    Ticket,
    utcnow,
)
from supportdesk.tickets.read import tags_of

_TAG = re.compile(r"^\w[\w.:/+-]{0,49}$")


# ---------------------------------------------------------------- results


# ---------------------------------------------------------------- field changes


def set_status(
    ticket: Ticket,
    new: str,
    now: datetime,
    *,
    desk: Desk | None = None,
    session: Session | None = None,
) -> None:
    """Move a ticket to ``new``, keeping solved_at/closed_at and the SLA clocks in step.

    With the desk, paused time is counted in business hours (services.sla.update_clocks); with
    the session too, solving a ticket asks the customer for a rating (once per ticket).
    """
    if new not in STATUSES:
        raise BadInput(f"the status is one of {', '.join(STATUSES)}, not {new!r}")
    old = ticket.status
    if new == old:
        return
    if new == "solved":
        ticket.solved_at = now
        ticket.closed_at = None
    elif new == "closed":
        ticket.closed_at = now
        if ticket.solved_at is None:
            ticket.solved_at = now
    else:
        ticket.solved_at = None
        ticket.closed_at = None
    if new in ("solved", "closed"):
        ticket.snoozed_until = None
    ticket.status = new
    ticket.updated_at = max(ticket.updated_at, now)
    if desk is not None:
        sla.update_clocks(desk.config, ticket, now)
    else:
        _wall_clock_pause(ticket, old, new, now)
        sla.refresh_due(ticket)
    if new == "solved" and desk is not None and session is not None:
        from supportdesk.replies import csat

        csat.request_survey(session, desk, ticket, now=now)


def _wall_clock_pause(ticket: Ticket, old: str, new: str, now: datetime) -> None:
    """Pause bookkeeping without a desk (no business hours known): wall-clock time."""
    if old == "pending" and ticket.sla_paused_since is not None:
        paused = now - ticket.sla_paused_since
        if paused > timedelta(0):
            ticket.sla_paused_seconds += int(paused.total_seconds())
            if ticket.resolution_due_at is not None:
                ticket.resolution_due_at = ticket.resolution_due_at + paused
        ticket.sla_paused_since = None
    if new == "pending":
        ticket.sla_paused_since = now


def set_priority(desk: Desk, ticket: Ticket, priority: str, now: datetime) -> None:
    p = priority.strip().lower()
    if p not in PRIORITIES:
        raise BadInput(f"the priority is one of {', '.join(PRIORITIES)}, not {priority!r}")
    if p == ticket.priority:
        return
    ticket.priority = p
    ticket.priority_rank = PRIORITY_RANK[p]
    ticket.priority_locked = True
    ticket.updated_at = max(ticket.updated_at, now)
    sla.apply_due_times(desk.config, ticket)


def _fields_op(
    desk: Desk, kind: str, mutate: Callable[[Session, Ticket, datetime], None], **extra: Any
) -> Callable[[Session, Ticket, str], None]:
    def op(s: Session, t: Ticket, batch: str) -> None:
        snap = snapshot(t)
        mutate(s, t, utcnow())
        s.add(t)
        record_fields(s, desk, kind, t, snap, batch=batch, **extra)

    return op


def _check_not_merged(t: Ticket) -> None:
    from supportdesk.store.merges import merged_into

    target = merged_into(t) if t.status == "closed" else None
    if target is not None:
        raise BadInput(f"ticket #{t.id} was merged into #{target}; work on that ticket")


def assign(desk: Desk, ids: list[int], who: str, *, dry_run: bool = False) -> ActionResult:
    """Assign tickets to ``me``, ``none`` or an agent by name."""
    target: dict[str, int | None] = {}

    def prepare(s: Session) -> None:
        agent = resolve_assignee(s, desk, who)
        target["id"] = agent.id if agent is not None else None

    def mutate(s: Session, t: Ticket, now: datetime) -> None:
        if t.assignee_id != target["id"]:
            t.assignee_id = target["id"]
            t.updated_at = max(t.updated_at, now)

    return for_each(
        desk,
        "assign",
        f"assign {_ids(ids)} to {who}",
        ids,
        _fields_op(desk, "assign", mutate),
        dry_run=dry_run,
        prepare=prepare,
    )


def set_fields(
    desk: Desk,
    ids: list[int],
    *,
    status: str | None = None,
    priority: str | None = None,
    dry_run: bool = False,
) -> ActionResult:
    """Set status and/or priority."""
    if status is None and priority is None:
        raise BadInput("give a status or a priority (or both)", field="status")
    if status is not None and status.strip().lower() not in STATUSES:
        raise BadInput(f"the status is one of {', '.join(STATUSES)}, not {status!r}")
    if priority is not None and priority.strip().lower() not in PRIORITIES:
        raise BadInput(f"the priority is one of {', '.join(PRIORITIES)}, not {priority!r}")

    def mutate(s: Session, t: Ticket, now: datetime) -> None:
        if status is not None:
            if status.strip().lower() != t.status:
                _check_not_merged(t)
            set_status(t, status.strip().lower(), now, desk=desk, session=s)
        if priority is not None:
            set_priority(desk, t, priority, now)

    what = " ".join(
        x
        for x in (f"status {status}" if status else "", f"priority {priority}" if priority else "")
        if x
    )
    return for_each(
        desk,
        "set",
        f"set {what} on {_ids(ids)}",
        ids,
        _fields_op(desk, "set", mutate),
        dry_run=dry_run,
    )


def close(
    desk: Desk, ids: list[int], *, solved: bool = False, dry_run: bool = False
) -> ActionResult:
    new = "solved" if solved else "closed"

    def mutate(s: Session, t: Ticket, now: datetime) -> None:
        set_status(t, new, now, desk=desk, session=s)

    return for_each(
        desk,
        "close",
        f"{'solve' if solved else 'close'} {_ids(ids)}",
        ids,
        _fields_op(desk, "close", mutate),
        dry_run=dry_run,
    )


def reopen(desk: Desk, ids: list[int], *, dry_run: bool = False) -> ActionResult:
    def mutate(s: Session, t: Ticket, now: datetime) -> None:
        if t.status in ("solved", "closed"):
            _check_not_merged(t)
            set_status(t, "open", now, desk=desk, session=s)

    return for_each(
        desk,
        "reopen",
        f"reopen {_ids(ids)}",
        ids,
        _fields_op(desk, "reopen", mutate),
        dry_run=dry_run,
    )


def normalize_tag(name: str) -> str:
    tag = name.strip().lstrip("#").casefold()
    if not _TAG.match(tag):
        raise BadInput(f"{name!r} is not a tag (letters, digits and . : / + - _, up to 50)")
    return tag


def tag(
    desk: Desk,
    ids: list[int],
    *,
    add: list[str] | None = None,
    remove: list[str] | None = None,
    dry_run: bool = False,
) -> ActionResult:
    adds = list(
        dict.fromkeys(
            normalize_tag(t) for tag_arg in (add or []) for t in tag_arg.split(",") if t.strip()
        )
    )
    rems = list(
        dict.fromkeys(
            normalize_tag(t) for tag_arg in (remove or []) for t in tag_arg.split(",") if t.strip()
        )
    )
    if not adds and not rems:
        raise BadInput("give a tag to add or to remove", field="add")
    both = set(adds) & set(rems)
    if both:
        raise BadInput(f"the tag {sorted(both)[0]!r} is both added and removed")

    def op(s: Session, t: Ticket, batch: str) -> None:
        change_tags(s, desk, t, adds, rems, batch=batch)

    what = " ".join([*(f"+{a}" for a in adds), *(f"-{r}" for r in rems)])
    return for_each(desk, "tag", f"tag {_ids(ids)} {what}", ids, op, dry_run=dry_run)


def change_tags(
    session: Session,
    desk: Desk,
    t: Ticket,
    add: list[str],
    remove: list[str],
    *,
    batch: str | None,
    kind: str = "tag",
) -> tuple[list[str], list[str]]:
    """Add and remove tags on one ticket, with an undoable event; returns (added, removed)."""
    tid = t.id or 0
    before = tags_of(session, [tid]).get(tid, [])
    added = [a for a in add if a not in before]
    removed = [r for r in remove if r in before]
    if not added and not removed:
        return [], []
    snap = snapshot(t)
    set_tags(session, tid, added, removed)
    after = sorted((set(before) | set(added)) - set(removed))
    t.updated_at = max(t.updated_at, utcnow())
    session.add(t)
    events.record(
        session,
        kind,
        agent=desk.agent,
        ticket_id=tid,
        batch=batch,
        undo="tags",
        added=added,
        removed=removed,
        before_tags=before,
        after_tags=after,
    )
    from supportdesk.sla import priority as priority_rules

    priority_rules.reapply(session, desk, t, batch=batch)  # tag rules may raise the priority
    record_fields(session, desk, kind, t, snap, batch=batch)
    return added, removed


# ---------------------------------------------------------------- snooze


_REL = re.compile(r"^\s*(\d+)\s*(m|min|h|d|w)\s*$", re.IGNORECASE)


def parse_until(text: str, desk: Desk, now: datetime | None = None) -> datetime:
    """ "2h", "3d", "tomorrow" (09:00 desk time), "monday", or an ISO date/time (desk time if no offset)."""
    now = now or utcnow()
    s = (text or "").strip()
    try:
        tz: Any = ZoneInfo(desk.config.desk.timezone)
    except Exception:
        tz = UTC
    m = _REL.match(s)
    if m:
        n, unit = int(m.group(1)), m.group(2).lower()
        step = {
            "m": timedelta(minutes=1),
            "min": timedelta(minutes=1),
            "h": timedelta(hours=1),
            "d": timedelta(days=1),
            "w": timedelta(weeks=1),
        }[unit]
        if n <= 0:
            raise BadInput(f"the snooze time {text!r} is not in the future", field="until")
        return now + n * step
    low = s.lower()
    local_today = now.astimezone(tz).date()
    days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    if low in ("tomorrow", "завтра"):
        return datetime.combine(local_today + timedelta(days=1), time(9, 0), tz).astimezone(UTC)
    if low in days:
        ahead = (days.index(low) - local_today.weekday()) % 7 or 7
        return datetime.combine(local_today + timedelta(days=ahead), time(9, 0), tz).astimezone(UTC)
    try:
        if len(s) == 10:
            d = date.fromisoformat(s)
            when = datetime.combine(d, time(9, 0), tz)
        else:
            when = datetime.fromisoformat(s)
            if when.tzinfo is None:
                when = when.replace(tzinfo=tz)
    except ValueError:
        raise BadInput(
            f"the snooze time {text!r} is not a time such as 2h, 3d, tomorrow or 2026-12-01T10:00",
            field="until",
        ) from None
    when = when.astimezone(UTC)
    if when <= now:
        raise BadInput(f"the snooze time {text!r} is in the past", field="until")
    return when


def snooze(
    desk: Desk, ids: list[int], until: datetime | None, *, dry_run: bool = False
) -> ActionResult:
    """Hide open tickets from ``is:open`` until ``until`` (None wakes them now)."""

    def mutate(s: Session, t: Ticket, now: datetime) -> None:
        if until is not None and t.status not in OPEN_STATUSES:
            raise BadInput(f"ticket #{t.id} is {t.status}; only open tickets can be snoozed")
        if t.snoozed_until != until:
            t.snoozed_until = until
            t.updated_at = max(t.updated_at, now)

    desc = f"snooze {_ids(ids)} until {until.isoformat()}" if until else f"wake {_ids(ids)}"
    return for_each(desk, "snooze", desc, ids, _fields_op(desk, "snooze", mutate), dry_run=dry_run)


def wake_snoozed(session: Session, desk: Desk, now: datetime) -> list[int]:
    """Clear snoozes whose time has come (the runner calls this); returns the woken ticket ids."""
    due = session.exec(
        select(Ticket).where(
            col(Ticket.snoozed_until).is_not(None), col(Ticket.snoozed_until) <= now
        )
    ).all()
    woken = []
    for t in due:
        before = t.snoozed_until
        t.snoozed_until = None
        session.add(t)
        events.record(
            session, "woke", agent="system", ticket_id=t.id, at=now, before=before, after=None
        )
        woken.append(t.id or 0)
    return woken


# ---------------------------------------------------------------- thread repair


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
        _check_not_merged(target)
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
            _check_not_merged(src)
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

    return execute(desk, "merge", f"merge {_ids(sources)} into #{into}", work, dry_run=dry_run)


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
        _check_not_merged(src)
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
        f"split message {_ids(message_ids, '')} into a new ticket",
        work,
        dry_run=dry_run,
    )


def move(desk: Desk, message_ids: list[int], to: int, *, dry_run: bool = False) -> ActionResult:
    """Move messages to another ticket."""

    def work(s: Session, batch: str) -> list[int]:
        msgs = _messages(s, message_ids)
        dst = get_ticket(s, to)
        _check_not_merged(dst)
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
        desk, "move", f"move message {_ids(message_ids, '')} to #{to}", work, dry_run=dry_run
    )


# ---------------------------------------------------------------- replies and new conversations


def _template_text(session: Session, desk: Desk, name: str, ticket: Ticket) -> tuple[str, str]:
    from supportdesk.replies.templates import render_template

    return render_template(session, desk, name, ticket, count_use=True)


def _channel_for(
    desk: Desk, session: Session, ticket: Ticket, channel: str | None
) -> tuple[str | None, str | None]:
    """(channel, to_address) for a reply on another channel than the ticket's."""
    if channel is None or channel == ticket.channel:
        return None, None
    match = [c for c in desk.config.channel if c.name == channel]
    if not match:
        known = ", ".join(c.name for c in desk.config.channel) or "none"
        raise BadInput(f"there is no channel named {channel!r} (configured: {known})")
    kind = match[0].type
    if kind == ticket.kind:
        return channel, None
    from supportdesk.desk.identity import resolve_customer
    from supportdesk.store.models import Identity

    cust = resolve_customer(session, ticket.customer_id)
    ident = session.exec(
        select(Identity).where(Identity.customer_id == cust.id, Identity.kind == kind)
    ).first()
    if ident is None:
        raise BadInput(
            f"the customer of ticket #{ticket.id} has no {kind} identity to reach on {channel!r}"
        )
    return channel, ident.address


def reply(
    desk: Desk,
    ticket_id: int,
    *,
    text: str | None = None,
    template: str | None = None,
    note: bool = False,
    attachments: list[Path] | None = None,
    channel: str | None = None,
    approved_template: str | None = None,
    template_params: list[str] | None = None,
    cc: list[str] | None = None,
    bcc: list[str] | None = None,
    reply_all: bool = False,
    to: str | None = None,
    status: str | None = None,
    from_template: str | None = None,
) -> Message:
    """Queue a reply (or store an internal note) on a ticket; a template's use is counted.
    ``approved_template``: one of the channel's provider-approved templates (WhatsApp outside
    the 24-hour window). ``reply_all`` adds the thread's other participants (inbound To/Cc) in
    Cc; ``cc``/``bcc`` add more; ``to`` replaces the customer's address. ``status`` (pending,
    solved) is set in the same transaction ("send and solve"). ``from_template`` names the
    template an edited ``text`` was written from (the console's composer): it counts as a use,
    in the same transaction as the reply."""
    if text is None and template is None and not approved_template:
        raise BadInput("give the reply text or a template")
    if status is not None and status not in ("open", "pending", "solved"):
        raise BadInput(f"the status after a reply is open, pending or solved, not {status!r}")
    for p in attachments or []:
        if not p.is_file():
            raise BadInput(f"the attachment {p} is not a readable file")
    with desk.db.write() as s:
        t = get_ticket(s, ticket_id)
        _check_not_merged(t)
        if text is not None or approved_template:
            body = text or ""
        else:
            body = _template_text(s, desk, template or "", t)[1]
        if text is not None and from_template:
            from supportdesk.replies.templates import get_template

            tpl = get_template(s, from_template)
            tpl.usage_count += 1
            s.add(tpl)
            template = from_template
        ch, to_address = _channel_for(desk, s, t, channel)
        from supportdesk.outbound.outbox import queue_outbound
        from supportdesk.tickets.recipients import reply_recipients

        extra_cc: list[str] = []
        if reply_all and not note:
            extra_cc = reply_recipients(s, desk, t, reply_all=True).cc
        if not note and not approved_template:
            body = with_signature(s, desk, t, body, ch or t.channel)
        msg = queue_outbound(
            s,
            desk,
            t,
            body,
            agent=desk.agent,
            note=note,
            attachments=attachments,
            channel=ch,
            to_address=to or to_address,
            template=template,
            approved_template=approved_template,
            template_params=template_params,
            cc=None if note else [*extra_cc, *(cc or [])],
            bcc=None if note else bcc,
        )
        if status is not None and not note and t.status != status:
            before = t.status
            t.status = status
            now = msg.created_at
            if status == "solved":
                t.solved_at = now
            sla.refresh_due(t)
            s.add(t)
            events.record(s, "status", agent=desk.agent, ticket_id=t.id, before=before,
                          after=status, at=now)  # fmt: skip
        return msg


def never_answered(desk: Desk, ids: list[int]) -> list[int]:
    """Those of ``ids`` that never got an agent reply (closing them deserves a second look)."""
    if not ids:
        return []
    from supportdesk.store.models import Message as Msg

    with desk.db.read() as s:
        answered = set(
            s.exec(
                select(Msg.ticket_id)
                .where(
                    col(Msg.ticket_id).in_(ids), Msg.direction == "out", col(Msg.is_auto).is_(False)
                )
                .distinct()
            ).all()
        )
    return [i for i in ids if i not in answered]


@dataclass
class Preview:
    """Exactly what a reply would send, before it is queued."""

    kind: str
    channel: str
    sender: str
    to: str
    cc: list[str]
    bcc: list[str]
    subject: str
    text: str
    html: bool
    attachments: list[tuple[str, int]]
    limit: int
    note: bool


def preview_reply(
    desk: Desk,
    ticket_id: int,
    *,
    text: str,
    note: bool = False,
    channel: str | None = None,
    cc: list[str] | None = None,
    bcc: list[str] | None = None,
    reply_all: bool = False,
    to: str | None = None,
    attachments: list[Path] | None = None,
) -> Preview:
    """The recipients, subject, text (signature included) and files of a reply, checked as
    queueing would check them (BadInput naming the field), without queueing anything."""
    from supportdesk.outbound.outbox import (
        attachment_limit,
        channel_address,
        clean_addresses,
        reply_subject,
    )
    from supportdesk.tickets.recipients import reply_recipients

    if not text.strip() and not attachments:
        raise BadInput("the reply is empty")
    files: list[tuple[str, int]] = []
    for p in attachments or []:
        if not p.is_file():
            raise BadInput(f"the attachment {p} is not a readable file")
        files.append((p.name, p.stat().st_size))
    with desk.db.read() as s:
        t = get_ticket(s, ticket_id)
        ch, to_address = _channel_for(desk, s, t, channel)
        ch = ch or t.channel
        kind = next((c.type for c in desk.config.channel if c.name == ch), t.kind)
        dest = to or to_address or t.reply_to_address
        limit = attachment_limit(kind)
        if note:
            return Preview(kind, ch, "", "", [], [], "", text, False, files, limit, True)
        extra = reply_recipients(s, desk, t, reply_all=True).cc if reply_all else []
        cc_list = clean_addresses([*extra, *(cc or [])], "Cc", exclude=[dest])
        bcc_list = clean_addresses(bcc or [], "Bcc", exclude=[dest, *cc_list])
        if (cc_list or bcc_list) and kind != "email":
            raise BadInput(f"Cc and Bcc need an e-mail channel; {ch} is {kind}")
        if sum(size for _n, size in files) > limit:
            raise BadInput(
                f"the attachments add up to {sum(n for _f, n in files) / 1048576:.1f} MB; a {kind} "
                f"message carries at most {limit / 1048576:.0f} MB"
            )
        body = with_signature(s, desk, t, text, ch)
        return Preview(
            kind=kind,
            channel=ch,
            sender=channel_address(desk, ch),
            to=dest,
            cc=cc_list,
            bcc=bcc_list,
            subject=reply_subject(t) if kind == "email" else "",
            text=body,
            html=kind == "email",
            attachments=files,
            limit=limit,
            note=False,
        )


def with_signature(session: Session, desk: Desk, ticket: Ticket, body: str, channel: str) -> str:
    """``body`` with the agent's and the channel's signatures in the customer's language
    (the desk's when unknown), each added once."""
    import json as json_mod

    from supportdesk.desk.identity import resolve_customer
    from supportdesk.store.models import Agent

    lang = (resolve_customer(session, ticket.customer_id).language or "").split("-")[0]
    lang = lang or desk.config.desk.language or "en"
    parts: list[str] = []
    agent = session.exec(select(Agent).where(Agent.name == desk.agent)).first()
    sigs: dict[str, str] = {}
    if agent is not None and agent.signature:
        try:
            sigs = json_mod.loads(agent.signature)
        except ValueError:
            sigs = {}
    if isinstance(sigs, dict) and (sigs.get(lang) or sigs.get("en")):
        parts.append(str(sigs.get(lang) or sigs.get("en")))
    ch_sigs = desk.config.signatures.get(channel) or {}
    if ch_sigs.get(lang) or ch_sigs.get("en"):
        parts.append(ch_sigs.get(lang) or ch_sigs.get("en") or "")
    out = body.rstrip("\n")
    for sig in parts:
        sig = sig.strip("\n")
        if sig and sig not in out:
            out += ("\n" + sig) if "\n-- \n" in out else ("\n\n-- \n" + sig)
    return out + ("\n" if body.endswith("\n") else "")


def forward(
    desk: Desk,
    ticket_id: int,
    *,
    to: str,
    message_id: int | None = None,
    text: str | None = None,
    cc: list[str] | None = None,
) -> Message:
    """Forward one message (or the whole ticket) with its attachments to ``to``; recorded in
    the thread as an outgoing message, not as an answer to the customer."""
    from supportdesk.outbound.outbox import clean_addresses, queue_outbound
    from supportdesk.tickets.recipients import forward_body

    with desk.db.write() as s:
        t = get_ticket(s, ticket_id)
        _check_not_merged(t)
        if t.kind != "email":
            email_channels = [c.name for c in desk.config.channel if c.type == "email"]
            if not email_channels:
                raise BadInput("forwarding needs an e-mail channel; none is configured")
            channel: str | None = email_channels[0]
        else:
            channel = None
        dest = clean_addresses([to], "To")
        if not dest:
            raise BadInput("give the address to forward to")
        fw = forward_body(s, desk, t, message_id, text or "")
        body = with_signature(s, desk, t, fw.text, channel or t.channel)
        # the HTML part: the agent's words as Markdown, the forwarded mail verbatim
        forwarded = body[len(text or "") :].strip("\n")
        fence = "~" * max(3, 1 + max((len(r) for r in re.findall(r"~+", forwarded)), default=0))
        markdown = f"{text or ''}\n\n{fence}\n{forwarded}\n{fence}\n"
        return queue_outbound(
            s,
            desk,
            t,
            body,
            agent=desk.agent,
            channel=channel,
            to_address=dest[0],
            to_name="",
            subject=fw.subject,
            cc=cc,
            forward=True,
            forward_files=fw.files,
            markdown=markdown,
        )


@dataclass
class NewTicket:
    ticket_id: int
    message_id: int
    customer_id: int
    queued: bool


def new_ticket(
    desk: Desk,
    *,
    customer: str,
    via: str,
    subject: str | None = None,
    text: str | None = None,
    template: str | None = None,
    channel: str | None = None,
) -> NewTicket:
    """Start a conversation: an e-mail, a Telegram message to a known chat, or a logged phone call."""
    from supportdesk.desk.identity import get_or_create_customer, normalize_email, normalize_phone
    from supportdesk.outbound.outbox import queue_outbound
    from supportdesk.people.customers import find_customer
    from supportdesk.store.models import Identity

    via = via.strip().lower()
    if via not in ("email", "telegram", "phone"):
        raise BadInput(
            f"the way to reach the customer is email, telegram or phone, not {via!r}", field="via"
        )
    if text is None and template is None:
        raise BadInput("give the text or a template", field="text")
    if text is not None and not text.strip():
        raise BadInput("the message text is empty")
    ch_name = channel
    if via != "phone":
        chans = [
            c
            for c in desk.config.channel
            if c.type == via and (channel is None or c.name == channel)
        ]
        if not chans:
            raise BadInput(
                f"no {via} channel is configured" + (f" named {channel!r}" if channel else "")
            )
        ch_name = chans[0].name
    with desk.db.write() as s:
        if via == "email":
            addr = customer.strip()
            if "@" in addr:
                cust, ident, _new = get_or_create_customer(s, "email", addr)
            else:
                cust = find_customer(s, addr)
                found = s.exec(
                    select(Identity).where(
                        Identity.customer_id == cust.id, Identity.kind == "email"
                    )
                ).first()
                if found is None:
                    raise BadInput(
                        f"customer {cust.id} has no e-mail address; name the address instead",
                        field="customer",
                    )
                ident = found
            dest = normalize_email(ident.address)
        elif via == "telegram":
            cust = find_customer(s, customer)
            tg = s.exec(
                select(Identity).where(Identity.customer_id == cust.id, Identity.kind == "telegram")
            ).first()
            if tg is None:
                raise BadInput(
                    f"customer {cust.id} has never written to the Telegram bot, so the bot cannot message them"
                )
            dest = tg.address
        else:
            digits = re.sub(r"[^\d]", "", customer)
            if customer.strip().startswith("+") or len(digits) >= 7:
                cust, ident, _new = get_or_create_customer(s, "phone", customer)
                dest = normalize_phone(customer)
            else:
                cust = find_customer(s, customer)
                dest = cust.phone
            ch_name = "phone"
        now = utcnow()
        t = Ticket(
            subject=(subject or "").strip()[:300],
            status="open",
            channel=ch_name or via,
            kind=via,
            customer_id=cust.id or 0,
            created_at=now,
            updated_at=now,
            reply_to_address=dest,
        )
        s.add(t)
        s.flush()
        body = text
        if template is not None:
            tsubj, body = _template_text(s, desk, template, t)
            if not t.subject:
                t.subject = tsubj.strip()[:300]
        if not t.subject:
            if via == "telegram" and body:
                t.subject = body.strip().splitlines()[0][:80]
            else:
                raise BadInput("give a subject (or a template with a subject)", field="subject")
        sla.apply_due_times(desk.config, t)
        events.record(
            s,
            "created",
            agent=desk.agent,
            ticket_id=t.id,
            customer_id=cust.id,
            channel=t.channel,
            subject=t.subject,
            via=via,
            started_by_agent=True,
        )
        if via == "phone":
            msg = queue_outbound(
                s, desk, t, body or "", agent=desk.agent, note=True, template=template
            )
            t.first_response_at = now
            t.last_agent_at = now
            sla.refresh_due(t)
            s.add(t)
        else:
            msg = queue_outbound(
                s,
                desk,
                t,
                body or "",
                agent=desk.agent,
                subject=f"{t.subject} [#{t.id}]",
                channel=ch_name,
                to_address=dest,
                template=template,
            )
        return NewTicket(t.id or 0, msg.id or 0, cust.id or 0, via != "phone")


def _ids(ids: list[int], hash_: str = "#") -> str:
    shown = ", ".join(f"{hash_}{i}" for i in ids[:5])
    return shown + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
