"""Loading a record by its id, with one clear sentence when it does not exist."""

from __future__ import annotations

from sqlmodel import Session

from supportdesk.core.errors import NotFound
from supportdesk.store.models import Ticket


def get_ticket(session: Session, ticket_id: int) -> Ticket:
    t = session.get(Ticket, ticket_id)
    if t is None:
        raise NotFound(f"ticket #{ticket_id} does not exist")
    return t
