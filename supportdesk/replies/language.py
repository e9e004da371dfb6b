"""The language to write to a customer in: their record's, else guessed from how the ticket began."""

from __future__ import annotations

from sqlmodel import Session, col, select

from supportdesk.store.models import Customer, Message, Ticket


def customer_language(session: Session, ticket: Ticket, customer: Customer) -> str:
    if customer.language:
        return "ru" if customer.language.lower().startswith("ru") else "en"
    first = session.exec(
        select(Message.text)
        .where(Message.ticket_id == ticket.id, Message.direction == "in")
        .order_by(col(Message.created_at))
        .limit(1)
    ).first()
    text = f"{ticket.subject} {first or ''}"
    letters = [c for c in text if c.isalpha()]
    cyr = sum(1 for c in letters if "\u0400" <= c <= "\u04ff")
    return "ru" if letters and cyr / len(letters) > 0.3 else "en"
