"""Reading tickets: the queue, one ticket with its thread, the customer's history.

The dictionaries returned here are the JSON shapes of DESIGN.md.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from sqlmodel import Session, col, select

from supportdesk.core.text import iso
from supportdesk.desk.desk import Desk, NotFound
from supportdesk.desk.permissions import agent_names
from supportdesk.desk.records import get_ticket
from supportdesk.outbound.outbox import delivery_of
from supportdesk.people.customers import history
from supportdesk.sla.clocks import is_breached
from supportdesk.store.models import (
    AttachmentRow,
    Customer,
    Identity,
    Message,
    Tag,
    Ticket,
    TicketTag,
    utcnow,
)


def tags_of(session: Session, ticket_ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = defaultdict(list)
    if not ticket_ids:
        return out
    for i in range(0, len(ticket_ids), 500):
        rows = session.exec(
            select(TicketTag.ticket_id, Tag.name)
            .join(Tag, col(Tag.id) == col(TicketTag.tag_id))
            .where(col(TicketTag.ticket_id).in_(ticket_ids[i : i + 500]))
            .order_by(col(Tag.name))
        ).all()
        for tid, name in rows:
            out[tid].append(name)
    return out


def customer_cards(session: Session, customer_ids: list[int]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    ids = sorted(set(customer_ids))
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        for c in session.exec(select(Customer).where(col(Customer.id).in_(chunk))).all():
            out[c.id or 0] = {"id": c.id, "name": c.name, "identities": []}
        for ident in session.exec(
            select(Identity).where(col(Identity.customer_id).in_(chunk)).order_by(col(Identity.id))
        ).all():
            if ident.customer_id in out:
                out[ident.customer_id]["identities"].append(
                    {"kind": ident.kind, "address": ident.address, "display": ident.display}
                )
    return out


def ticket_rows(session: Session, tickets: list[Ticket]) -> list[dict[str, Any]]:
    ids = [t.id or 0 for t in tickets]
    tags = tags_of(session, ids)
    custs = customer_cards(session, [t.customer_id for t in tickets])
    agents = agent_names(session, [t.assignee_id or 0 for t in tickets])
    now = utcnow()
    out = []
    for t in tickets:
        out.append(
            {
                "id": t.id,
                "subject": t.subject,
                "status": t.status,
                "priority": t.priority,
                "channel": t.channel,
                "kind": t.kind,
                "customer": custs.get(
                    t.customer_id, {"id": t.customer_id, "name": "", "identities": []}
                ),
                "assignee": agents.get(t.assignee_id or 0),
                "group": t.group,
                "tags": tags.get(t.id or 0, []),
                "created_at": iso(t.created_at),
                "updated_at": iso(t.updated_at),
                "due_at": iso(t.due_at),
                "first_response_due_at": iso(t.first_response_due_at),
                "resolution_due_at": iso(t.resolution_due_at),
                "first_response_at": iso(t.first_response_at),
                "solved_at": iso(t.solved_at),
                "snoozed_until": iso(t.snoozed_until),
                # the same test as the query's sla:breached, whether or not a runner has run
                "sla_breached": is_breached(t, now),
                "message_count": t.message_count,
                "csat": t.csat_score,
            }
        )
    return out


def queue_order() -> list[Any]:
    """Hot tickets first: urgent before low, then the nearest deadline, then the newest."""
    return [
        col(Ticket.priority_rank).desc(),
        col(Ticket.due_at).is_(None),  # false (has a deadline) first; ix_ticket_queue matches this
        col(Ticket.due_at).asc(),
        col(Ticket.id).desc(),
    ]


def list_tickets(
    session: Session,
    desk: Desk,
    query: str = "",
    *,
    limit: int | None = 100,
    offset: int = 0,
    order: str = "hot",
) -> list[Ticket]:
    from supportdesk.search.query import apply_query

    stmt = select(Ticket)
    stmt = apply_query(stmt, query, desk=desk, session=session)
    if order == "hot":
        stmt = stmt.order_by(*queue_order())
    elif order == "newest":
        stmt = stmt.order_by(col(Ticket.id).desc())
    elif order == "updated":
        stmt = stmt.order_by(col(Ticket.updated_at).desc(), col(Ticket.id).desc())
    if limit is not None:
        stmt = stmt.limit(limit).offset(offset)
    return list(session.exec(stmt).all())


def attachments_of(session: Session, message_ids: list[int]) -> dict[int, list[AttachmentRow]]:
    out: dict[int, list[AttachmentRow]] = defaultdict(list)
    if message_ids:
        for a in session.exec(
            select(AttachmentRow)
            .where(col(AttachmentRow.message_id).in_(message_ids))
            .order_by(col(AttachmentRow.id))
        ).all():
            out[a.message_id or 0].append(a)
    return out


def thread(session: Session, ticket_id: int) -> list[Message]:
    return list(
        session.exec(
            select(Message)
            .where(Message.ticket_id == ticket_id)
            .order_by(col(Message.created_at), col(Message.id))
        ).all()
    )


def show_ticket(desk: Desk, ticket_id: int) -> dict[str, Any]:
    with desk.db.read() as session:
        t = get_ticket(session, ticket_id)
        doc = ticket_rows(session, [t])[0]
        msgs = thread(session, ticket_id)
        mids = [m.id or 0 for m in msgs]
        atts = attachments_of(session, mids)
        deliveries = delivery_of(session, mids)
        out_msgs = []
        for m in msgs:
            d = deliveries.get(m.id or 0)
            out_msgs.append(
                {
                    "id": m.id,
                    "direction": m.direction,
                    "channel": m.channel,
                    "kind": m.kind,
                    "author": m.author,
                    "author_address": m.author_address,
                    "subject": m.subject,
                    "text": m.text,
                    "quoted_text": m.quoted_text,
                    "created_at": iso(m.created_at),
                    "delivery": (
                        {
                            "status": d.state,
                            "attempts": d.attempts,
                            "error": d.last_error or None,
                            "outbox_id": d.id,
                        }
                        if d is not None
                        else None
                    ),
                    "attachments": [
                        {
                            "id": a.id,
                            "filename": a.filename,
                            "size": a.size,
                            "content_type": a.content_type,
                            "stored": a.stored_path is not None,
                            "note": a.note,
                        }
                        for a in atts.get(m.id or 0, [])
                    ],
                    "thread_reason": m.thread_reason,
                    "to": m.to_addresses.split(),
                    "cc": m.cc_addresses.split(),
                    "bcc": m.bcc_addresses.split(),
                    "html": m.html is not None and bool(m.html.strip()),
                    "message_id": m.message_id,
                    "edited": m.edited_at is not None,
                    "versions": json.loads(m.versions) if m.versions else [],
                    "auto": m.is_auto,
                }
            )
        doc["messages"] = out_msgs
        doc["first_response_queued"] = doc["first_response_at"] is None and any(
            m["direction"] == "out"
            and not m["auto"]
            and (m["delivery"] or {}).get("status") in ("queued", "sending")
            for m in out_msgs
        )
        from supportdesk.tickets.recipients import participants

        doc["participants"] = participants(session, desk, t)
        doc["reply_to"] = t.reply_to_address
        doc["history"] = [
            {
                "id": h.id,
                "channel": h.channel,
                "kind": h.kind,
                "subject": h.subject,
                "status": h.status,
                "created_at": iso(h.created_at),
            }
            for h in history(session, t.customer_id, exclude=t.id)
        ]
        cust = session.get(Customer, t.customer_id)
        if cust is not None:
            doc["customer"].update(
                {
                    "company": cust.company,
                    "phone": cust.phone,
                    "language": cust.language,
                    "notes": cust.notes,
                }
            )
        doc["csat_comment"] = t.csat_comment
        return doc


def queue_rows(
    desk: Desk, query: str = "", *, limit: int | None = 100, order: str = "hot"
) -> list[dict[str, Any]]:
    """The queue as rows (the JSON shape of ``tickets list``), in a read transaction of its own."""
    with desk.db.read() as session:
        return ticket_rows(session, list_tickets(session, desk, query, limit=limit, order=order))


def message_html(desk: Desk, ticket_id: int, message_id: int) -> str | None:
    """The HTML an inbound message came with (None when it had none)."""
    with desk.db.read() as session:
        m = session.get(Message, message_id)
        if m is None or m.ticket_id != ticket_id:
            raise NotFound(f"ticket #{ticket_id} has no message {message_id}")
        return m.html if m.html and m.html.strip() else None
