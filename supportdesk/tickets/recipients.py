"""Who a reply goes to: the thread's participants (inbound From, To and Cc), reply-all, and
what a forward carries (one message or the whole ticket, with attachments)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from supportdesk.desk.desk import Desk, NotFound
from supportdesk.desk.identity import normalize_email
from supportdesk.store import reads
from supportdesk.store.db import session_run
from supportdesk.store.models import AttachmentRow, Message, Ticket
from supportdesk.tickets.shown import participants_of


def desk_addresses(desk: Desk) -> set[str]:
    """Every address the desk itself sends from (never a participant)."""
    return {normalize_email(a) for a in desk.config.own_addresses()}


def participants(session: Session, desk: Desk, ticket: Ticket) -> list[str]:
    """E-mail addresses on the thread other than the customer's and the desk's, in the order
    they first appeared (``tickets.shown.participants_of``)."""
    if ticket.kind != "email" or ticket.id is None:
        return []
    rows = reads.participant_rows(session_run(session), ticket.id)
    return participants_of(ticket.kind, ticket.reply_to_address, rows, desk.config.own_addresses())


@dataclass
class Recipients:
    to: str
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)


def reply_recipients(
    session: Session, desk: Desk, ticket: Ticket, *, reply_all: bool = False
) -> Recipients:
    """The customer; with ``reply_all`` every other participant in Cc."""
    cc = participants(session, desk, ticket) if reply_all else []
    return Recipients(to=ticket.reply_to_address, cc=cc)


@dataclass
class Forwarded:
    text: str
    files: list[AttachmentRow]
    subject: str


def forward_body(
    session: Session, desk: Desk, ticket: Ticket, message_id: int | None, intro: str
) -> Forwarded:
    """The text of a forward: ``intro``, then the message (or every message of the ticket,
    notes excepted) with its headers; and the stored attachments to send along."""
    q = select(Message).where(Message.ticket_id == ticket.id)
    if message_id is not None:
        q = q.where(Message.id == message_id)
    else:
        q = q.where(col(Message.direction).in_(["in", "out"]))
    messages = list(session.exec(q.order_by(col(Message.created_at), col(Message.id))).all())
    if message_id is not None and not messages:
        raise NotFound(f"ticket #{ticket.id} has no message {message_id}")
    if messages and messages[0].direction == "note":
        raise NotFound(f"message {message_id} is an internal note; notes are never forwarded")
    tz = ZoneInfo(desk.config.desk.timezone or "UTC")
    parts = [intro.rstrip()] if intro.strip() else []
    for m in messages:
        parts.append(
            "---------- Forwarded message ----------\n"
            f"From: {m.author} <{m.author_address}>\n"
            f"Date: {_when(m.created_at, tz)}\n"
            f"Subject: {m.subject or ticket.subject}\n"
            + (f"To: {', '.join(m.to_addresses.split())}\n" if m.to_addresses else "")
            + (f"Cc: {', '.join(m.cc_addresses.split())}\n" if m.cc_addresses else "")
            + "\n"
            + m.text.rstrip()
        )
    ids = [m.id for m in messages if m.id is not None]
    files = list(
        session.exec(
            select(AttachmentRow)
            .where(col(AttachmentRow.message_id).in_(ids), col(AttachmentRow.stored_path).is_not(None))
            .order_by(col(AttachmentRow.id))
        ).all()
    ) if ids else []  # fmt: skip
    subject = (messages[0].subject if message_id is not None and messages else "") or ticket.subject
    return Forwarded(text="\n\n".join(parts) + "\n", files=files, subject=subject)


def _when(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
