"""Triage: assign, tag, set status/priority, close, reopen, snooze (thread repair is in
repair.py, replies in replying.py, forwards and new tickets in outgoing.py).

Every action over tickets runs in one write transaction as one journal batch (see journal.py):
``supportdesk undo`` reverts it exactly. ``dry_run=True`` performs the action inside the
transaction, reports what changed, and rolls everything back, so the preview is exactly what the
real run would do.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from supportdesk.actions.batch import ActionResult, describe_ids, for_each
from supportdesk.actions.journal import (
    record_fields,
    set_tags,
    snapshot,
)
from supportdesk.desk import audit as events
from supportdesk.desk.desk import BadInput, Desk
from supportdesk.desk.permissions import resolve_assignee
from supportdesk.sla import clocks as sla
from supportdesk.store.models import (
    PRIORITIES,
    PRIORITY_RANK,
    STATUSES,
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


def fields_op(
    desk: Desk, kind: str, mutate: Callable[[Session, Ticket, datetime], None], **extra: Any
) -> Callable[[Session, Ticket, str], None]:
    def op(s: Session, t: Ticket, batch: str) -> None:
        snap = snapshot(t)
        mutate(s, t, utcnow())
        s.add(t)
        record_fields(s, desk, kind, t, snap, batch=batch, **extra)

    return op


def check_not_merged(t: Ticket) -> None:
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
        f"assign {describe_ids(ids)} to {who}",
        ids,
        fields_op(desk, "assign", mutate),
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
                check_not_merged(t)
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
        f"set {what} on {describe_ids(ids)}",
        ids,
        fields_op(desk, "set", mutate),
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
        f"{'solve' if solved else 'close'} {describe_ids(ids)}",
        ids,
        fields_op(desk, "close", mutate),
        dry_run=dry_run,
    )


def reopen(desk: Desk, ids: list[int], *, dry_run: bool = False) -> ActionResult:
    def mutate(s: Session, t: Ticket, now: datetime) -> None:
        if t.status in ("solved", "closed"):
            check_not_merged(t)
            set_status(t, "open", now, desk=desk, session=s)

    return for_each(
        desk,
        "reopen",
        f"reopen {describe_ids(ids)}",
        ids,
        fields_op(desk, "reopen", mutate),
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
    return for_each(desk, "tag", f"tag {describe_ids(ids)} {what}", ids, op, dry_run=dry_run)


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
