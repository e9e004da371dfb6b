"""The search index seam: ingest and edits call these; the search backend fills them."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from supportdesk.store.models import Message, Ticket


def index_message(session: Session, message: Message, ticket: Ticket) -> None:
    """Add or refresh one message (and its ticket's subject) in the full-text index."""
    return None


def ticket_ids_matching(words: list) -> Any:  # type: ignore[type-arg]
    """A SELECT of ticket ids whose subject or messages contain all ``words`` (Query terms)."""
    import sqlalchemy as sa
    from sqlmodel import col, select

    stmt = select(Ticket.id)
    for w in words:
        like = f"%{w.value}%"
        in_msgs = select(Message.ticket_id).where(col(Message.text).ilike(like))
        stmt = stmt.where(sa.or_(col(Ticket.subject).ilike(like), col(Ticket.id).in_(in_msgs)))
    return stmt
