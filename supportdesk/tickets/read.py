"""Reading tickets: the queue, one ticket with its thread, the customer's history.

The dictionaries returned here are the JSON shapes of DESIGN.md.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from supportdesk.core.text import iso
from supportdesk.desk.desk import Desk, NotFound
from supportdesk.desk.records import get_ticket
from supportdesk.outbound.outbox import delivery_of
from supportdesk.people.customers import history
from supportdesk.store import reads
from supportdesk.store.db import session_run
from supportdesk.store.models import AttachmentRow, Customer, Message, Ticket
from supportdesk.tickets.rows import ticket_docs


def tags_of(session: Session, ticket_ids: list[int]) -> dict[int, list[str]]:
    return reads.tags_of(session_run(session), ticket_ids)


def customer_cards(session: Session, customer_ids: list[int]) -> dict[int, dict[str, Any]]:
    return reads.customer_cards(session_run(session), customer_ids)


def ticket_rows(session: Session, tickets: list[Ticket]) -> list[dict[str, Any]]:
    return ticket_docs(session_run(session), tickets)


def queue_order() -> list[Any]:
    """Hot tickets first: urgent before low, then the nearest deadline, then the newest
    (the SQL of ``store.reads.QUEUE_ORDER``, which the command line's quick path runs too)."""
    return [sa.text(reads.QUEUE_ORDER["hot"])]


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
    if order in reads.QUEUE_ORDER:
        stmt = stmt.order_by(sa.text(reads.QUEUE_ORDER[order]))
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
