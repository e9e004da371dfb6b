"""Keeping the full-text index in step with the tables, inside the writer's transaction.

Who calls what:

* ingest and outbox call ``index_message(session, message, ticket)`` for every new message; ingest
  calls it again (with ``ticket=None``) when a Telegram message is edited.
* ticket subject edits: ``index_ticket(session, ticket)``.
* customer renames, identity links/unlinks and merges: ``index_customer(session, customer_id)``.
* moving messages between tickets needs nothing: a message's ticket is looked up at query time.
  After a merge or split, ``reindex_ticket(session, ticket_id)`` refreshes the ticket's subject,
  its messages and its customer in one call (cheap; safe to call whenever in doubt).
* deleting rows needs nothing either (delete triggers drop their documents); after deleting an
  attachment row call ``reindex_message(session, message_id)``. ``remove_message`` and
  ``remove_ticket`` exist for code that wants to drop documents explicitly.
* ``rebuild(session)`` re-creates the whole index from the tables (after bulk inserts).

``tickets_matching(words)`` is the query language's free-word filter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from supportdesk.desk.desk import BadInput
from supportdesk.store import search as store
from supportdesk.store.models import (
    AttachmentRow,
    Customer,
    Identity,
    Message,
    Ticket,
)


def _conn(session: Session) -> Any:
    return session.connection()


def message_doc(session: Session, message: Message) -> store.Doc:
    names = session.exec(
        select(AttachmentRow.filename).where(AttachmentRow.message_id == message.id)
    ).all()
    return store.Doc(
        store.KIND_MESSAGE, message.id or 0, title=message.subject or "", body=message.text or "",
        extra=" ".join(n or "" for n in names),
    )  # fmt: skip


def customer_doc(session: Session, customer: Customer) -> store.Doc:
    idents = session.exec(select(Identity).where(Identity.customer_id == customer.id)).all()
    extra = " ".join(f"{i.address} {i.display}" for i in idents)
    return store.Doc(
        store.KIND_CUSTOMER, customer.id or 0, title=f"{customer.name} {customer.company}",
        body=customer.notes or "", extra=extra,
    )  # fmt: skip


def index_message(session: Session, message: Message, ticket: Ticket | None) -> None:
    """Add or refresh one message (and its ticket's subject and its customer) in the index."""
    if message.id is None:
        session.flush()
    docs = [message_doc(session, message)]
    if ticket is not None and ticket.id is not None:
        docs.append(store.Doc(store.KIND_TICKET, ticket.id, title=ticket.subject or ""))
    cust_id = message.customer_id or (ticket.customer_id if ticket is not None else None)
    if cust_id:
        cust = session.get(Customer, cust_id)
        if cust is not None:
            docs.append(customer_doc(session, cust))
    store.upsert(_conn(session), docs)


def index_ticket(session: Session, ticket: Ticket) -> None:
    """Refresh a ticket's subject in the index (after the subject changed)."""
    if ticket.id is None:
        session.flush()
    store.upsert(
        _conn(session), [store.Doc(store.KIND_TICKET, ticket.id or 0, title=ticket.subject)]
    )


def index_customer(session: Session, customer_id: int) -> None:
    """Refresh a customer's name, company, notes and identities in the index."""
    session.flush()
    cust = session.get(Customer, customer_id)
    if cust is None:
        store.delete(_conn(session), [store.doc_key(store.KIND_CUSTOMER, customer_id)])
        return
    store.upsert(_conn(session), [customer_doc(session, cust)])


def reindex_message(session: Session, message_id: int) -> None:
    session.flush()
    msg = session.get(Message, message_id)
    if msg is None:
        remove_message(session, message_id)
        return
    store.upsert(_conn(session), [message_doc(session, msg)])


def reindex_ticket(session: Session, ticket_id: int) -> None:
    """Refresh a ticket's subject, every message now on it, and its customer."""
    session.flush()
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        remove_ticket(session, ticket_id)
        return
    docs = [store.Doc(store.KIND_TICKET, ticket_id, title=ticket.subject or "")]
    for msg in session.exec(select(Message).where(Message.ticket_id == ticket_id)).all():
        docs.append(message_doc(session, msg))
    cust = session.get(Customer, ticket.customer_id)
    if cust is not None:
        docs.append(customer_doc(session, cust))
    store.upsert(_conn(session), docs)


def remove_message(session: Session, message_id: int) -> None:
    store.delete(_conn(session), [store.doc_key(store.KIND_MESSAGE, message_id)])


def remove_ticket(session: Session, ticket_id: int) -> None:
    """Drop a ticket's subject and the documents of the messages still on it."""
    session.flush()
    ids = session.exec(select(Message.id).where(Message.ticket_id == ticket_id)).all()
    keys = [store.doc_key(store.KIND_TICKET, ticket_id)]
    keys += [store.doc_key(store.KIND_MESSAGE, i or 0) for i in ids]
    store.delete(_conn(session), keys)


def rebuild(session: Session) -> int:
    """Re-create the whole index from the tables; returns the number of documents."""
    session.flush()
    return store.rebuild_all(_conn(session))


# --------------------------------------------------------------------------- query side


def to_terms(words: Sequence[Any]) -> list[store.Term]:
    """Query-language word terms (key "" or "phrase") as index terms, all positive."""
    terms = [store.make_term(w.value, phrase=w.key == "phrase") for w in words]
    try:
        store.check_size(store.Parsed(terms))
    except store.SearchSyntaxError as exc:
        raise BadInput(str(exc)) from None
    return [t for t in terms if not t.empty]


def tickets_matching(words: Sequence[Any]) -> Any:
    """A condition: ``ticket.id`` is a ticket containing all ``words`` (query-language Terms;
    negated ones are taken as positive). A word with no letters or digits constrains nothing:
    true, or false when the words were negated."""
    terms = to_terms(words)
    if not terms:
        return sa.false() if any(getattr(w, "negated", False) for w in words) else sa.true()
    return store.TicketsMatching(terms)
