"""TODO docstring"""

from __future__ import annotations

from sqlmodel import Session

from supportdesk.store.models import Ticket


def merged_into(ticket: Ticket) -> int | None:
    """A merged ticket is closed with ``reply_to_address = "merged:<target id>"``."""
    if ticket.reply_to_address.startswith("merged:"):
        try:
            return int(ticket.reply_to_address.split(":", 1)[1])
        except ValueError:
            return None
    return None


def follow_merges(session: Session, ticket: Ticket | None) -> Ticket | None:
    seen: set[int] = set()
    while ticket is not None and ticket.status == "closed" and ticket.id not in seen:
        seen.add(ticket.id or 0)
        target = merged_into(ticket)
        if target is None:
            break
        nxt = session.get(Ticket, target)
        if nxt is None:
            break
        ticket = nxt
    return ticket
