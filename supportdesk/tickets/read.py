"""Reading tickets: the queue, one ticket with its thread, the customer's history.

The dictionaries returned here are the JSON shapes of DESIGN.md.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from supportdesk.desk.desk import Desk, NotFound
from supportdesk.desk.records import get_ticket as get_ticket
from supportdesk.store import reads
from supportdesk.store.db import session_run
from supportdesk.store.models import Message, Ticket
from supportdesk.tickets.rows import ticket_docs
from supportdesk.tickets.shown import show_doc


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


def show_ticket(desk: Desk, ticket_id: int) -> dict[str, Any]:
    """``tickets show``'s document (``tickets.shown.show_doc``, which the command line's quick
    path builds too), in a read transaction of its own."""
    with desk.db.read() as session:
        return show_doc(session_run(session), ticket_id, desk.config.own_addresses())


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
