"""Reply collisions: the customer wrote again while an agent was drafting.

A composer (console or ``$EDITOR``) remembers the newest message id of the ticket when the agent
starts writing; before the reply is queued it asks ``newer_customer_messages`` and, when the
list is not empty, warns and lets the agent read them first. Ids grow in arrival order on both
backends (writers are serialized), so "newer" means "arrived after", whatever the date the
customer's client put on the message.
"""

from __future__ import annotations

from sqlmodel import col, func, select

from supportdesk.desk.desk import Desk
from supportdesk.store.models import Message


def newest_message_id(desk: Desk, ticket_id: int) -> int | None:
    """The id of the ticket's newest message of any direction (what a draft starts from)."""
    with desk.db.read() as session:
        value = session.exec(
            select(func.max(Message.id)).where(Message.ticket_id == ticket_id)
        ).one()
        return int(value) if value is not None else None


def newer_customer_messages(
    desk: Desk, ticket_id: int, since_message_id: int | None
) -> list[Message]:
    """Inbound messages of the ticket that arrived after ``since_message_id``, oldest first.

    ``since_message_id`` None means the draft was started on a ticket with no messages, so
    every inbound message is newer. Automatic mail (auto-replies, bounces) does not count.
    """
    with desk.db.read() as session:
        q = (
            select(Message)
            .where(Message.ticket_id == ticket_id, Message.direction == "in")
            .where(col(Message.is_auto).is_(False), Message.auto_reason == "")
            .order_by(col(Message.id))
        )
        if since_message_id is not None:
            q = q.where(col(Message.id) > since_message_id)
        return list(session.exec(q).all())


__all__ = ["newer_customer_messages", "newest_message_id"]
