"""Ingest: dedupe -> identity -> threading -> ticket/message, in the caller's transaction.

Every inbound message records why it joined its ticket (``thread_reason``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlmodel import Session, col, select

from supportdesk.connectors.base import InboundMessage
from supportdesk.services import events, priority_rules, sla
from supportdesk.services.desk import Desk
from supportdesk.services.identity import get_or_create_customer, normalize_email, resolve_customer
from supportdesk.store.files import StorageError, store_attachment
from supportdesk.store.models import (
    OPEN_STATUSES,
    AttachmentRow,
    Message,
    Outbox,
    Quarantine,
    Ticket,
    utcnow,
)

Outcome = Literal["new_ticket", "joined", "duplicate", "updated", "outbound", "bounce", "ignored"]

# Re:, Fwd:, AW:, WG:, Ответ:, Отв:, Fw:, RE[2]:, Re^2: ... repeated
_PREFIX = re.compile(
    r"^\s*(?:(?:re|fwd?|aw|wg|sv|vs|tr|antw|ответ|отв|пересл|переслать|на)\s*(?:\[\d+\]|\^\d+|\(\d+\))?\s*[:：]\s*)+",
    re.IGNORECASE,
)
_TOKEN = re.compile(r"\[#(\d{1,12})\]")


def strip_prefixes(subject: str) -> str:
    return _PREFIX.sub("", subject or "").strip()


def ticket_token(subject: str) -> int | None:
    """The ``[#N]`` token of a subject, if any."""
    m = _TOKEN.search(subject or "")
    return int(m.group(1)) if m else None


def clean_subject(subject: str) -> str:
    """Subject without reply prefixes and without our token, for a new ticket's title."""
    s = _TOKEN.sub("", strip_prefixes(subject)).strip()
    return re.sub(r"\s+", " ", s)


@dataclass
class IngestResult:
    outcome: Outcome
    ticket_id: int | None = None
    message_id: int | None = None
    customer_id: int | None = None
    reason: str = ""
    needs_ack: bool = False
    is_start: bool = False


def _telegram_subject(msg: InboundMessage) -> str:
    first = (msg.text or "").strip().splitlines()[0] if (msg.text or "").strip() else ""
    if not first and msg.attachments:
        first = "(" + ", ".join(a.filename for a in msg.attachments[:3]) + ")"
    first = first or "(no text)"
    return first[:80] + ("…" if len(first) > 80 else "")


def follow_merges(session: Session, ticket: Ticket | None) -> Ticket | None:
    seen: set[int] = set()
    while ticket is not None and ticket.status == "closed" and ticket.id not in seen:
        seen.add(ticket.id or 0)
        merged = _merged_into(ticket)
        if merged is None:
            break
        nxt = session.get(Ticket, merged)
        if nxt is None:
            break
        ticket = nxt
    return ticket


def _merged_into(ticket: Ticket) -> int | None:
    # a merged ticket is closed with group-less marker in reply_to_address: "merged:<id>"
    if ticket.reply_to_address.startswith("merged:"):
        try:
            return int(ticket.reply_to_address.split(":", 1)[1])
        except ValueError:
            return None
    return None


def _find_by_ids(session: Session, ids: list[str]) -> tuple[Ticket | None, str]:
    ids = [i for i in ids if i][:100]
    if not ids:
        return None, ""
    rows = session.exec(
        select(Message.message_id, Message.ticket_id).where(col(Message.message_id).in_(ids))
    ).all()
    by_id = {mid: tid for mid, tid in rows}
    for mid in reversed(ids):  # the nearest ancestor first
        if mid in by_id:
            return follow_merges(session, session.get(Ticket, by_id[mid])), mid
    return None, ""


def _ack_allowed(session: Session, desk: Desk, msg: InboundMessage, address: str) -> bool:
    from supportdesk.services.ack import ack_allowed

    return ack_allowed(session, desk, msg, address)


def _store_attachments(desk: Desk, session: Session, message: Message, msg: InboundMessage) -> None:
    for i, att in enumerate(msg.attachments):
        row = AttachmentRow(
            message_id=message.id,
            filename=(att.filename or "attachment").replace("\x00", ""),
            size=att.size or (len(att.data) if att.data is not None else 0),
            content_type=att.content_type or "application/octet-stream",
            note=att.note,
            inline=att.inline,
        )
        if att.data is not None:
            from supportdesk.store.files import sha256_hex

            row.sha256 = sha256_hex(att.data)
            try:
                row.stored_path = store_attachment(
                    desk.home, message.id or 0, i, att.filename, att.data
                )
            except StorageError as exc:
                # never lose the message: keep it, record the file as not stored
                row.note = f"not stored: {exc.strerror or exc}"
        session.add(row)


def ingest(
    session: Session,
    desk: Desk,
    msg: InboundMessage,
    *,
    historical: bool = False,
    raw_sha256: str | None = None,
    now: datetime | None = None,
) -> IngestResult:
    """Store one normalized inbound message. The caller commits (with its cursor)."""
    now = now or utcnow()
    key = msg.dedupe_key
    existing = session.exec(select(Message).where(Message.dedupe_key == key)).first()
    if existing is not None:
        if msg.edited and msg.text != existing.text:
            versions = json.loads(existing.versions or "[]")
            versions.append({"text": existing.text, "until": now.isoformat()})
            existing.versions = json.dumps(versions, ensure_ascii=False)
            existing.text = msg.text
            existing.edited_at = now
            session.add(existing)
            from supportdesk.services import search_index  # the edited text replaces the old

            search_index.index_message(session, existing, None)
            events.record(
                session,
                "message_edited",
                agent="system",
                ticket_id=existing.ticket_id,
                message_id=existing.id,
                before=versions[-1]["text"],
                after=msg.text,
            )
            return IngestResult("updated", existing.ticket_id, existing.id, reason="edited")
        return IngestResult("duplicate", existing.ticket_id, existing.id, reason="duplicate")

    kind = msg.kind
    sender = msg.sender_address
    own = desk.own_addresses
    outbound = kind == "email" and normalize_email(sender) in own
    sent_at = msg.sent_at or now
    if historical is False and sent_at > now:
        sent_at = now

    # Telegram /start: the greeting, not a ticket by itself
    words = (msg.text or "").split()
    if kind == "telegram" and msg.extra.get("is_start") and len(words) <= 2 and not msg.attachments:
        cust, _ident, _new = get_or_create_customer(
            session, "telegram", sender, msg.sender_name, str(msg.extra.get("username") or "")
        )
        return IngestResult("ignored", customer_id=cust.id, reason="/start", is_start=True)

    # Bounce of one of ours: a delivery failure on its ticket, not a new ticket
    if kind == "email" and msg.bounce_of:
        ticket, matched = _find_by_ids(session, msg.bounce_of)
        if ticket is not None:
            note = Message(
                ticket_id=ticket.id or 0,
                direction="note",
                channel=msg.channel,
                kind=kind,
                author="mail delivery system",
                author_address=sender,
                dedupe_key=key,
                message_id=msg.external_id,
                subject=msg.subject,
                text=f"Delivery failed for <{matched}>: {msg.bounce_error or 'bounced'}",
                quoted_text=msg.text,
                created_at=sent_at,
                received_at=now,
                thread_reason=f"bounce of <{matched}>",
                raw_sha256=raw_sha256,
                auto_reason=msg.auto_reason or "bounce",
                is_auto=True,
            )
            session.add(note)
            ob = session.exec(select(Outbox).where(Outbox.external_message_id == matched)).first()
            if ob is not None:
                ob.state = "failed"
                ob.last_error = f"bounced: {msg.bounce_error or 'no reason given'}"[:500]
                session.add(ob)
            session.flush()
            events.record(
                session,
                "delivery_failed",
                agent="system",
                ticket_id=ticket.id,
                message_id=note.id,
                error=msg.bounce_error,
                of=matched,
                at=sent_at,
            )
            return IngestResult("bounce", ticket.id, note.id, reason=note.thread_reason)

    # Identity of the customer
    if outbound:
        others = [a for a in (msg.to_addresses + msg.cc_addresses) if normalize_email(a) not in own]
        cust_addr = others[0] if others else sender
        cust, _ident, _new = get_or_create_customer(session, "email", cust_addr)
    else:
        display = str(msg.extra.get("username") or "") if kind == "telegram" else ""
        cust, _ident, _new = get_or_create_customer(
            session, kind, sender, msg.sender_name, display=("@" + display) if display else ""
        )
    assert cust.id is not None

    # Threading
    ticket: Ticket | None = None
    reason = ""
    if kind == "email":
        refs = list(msg.references)
        if msg.in_reply_to:
            refs += [i for i in msg.in_reply_to if i not in refs]
        ticket, matched = _find_by_ids(session, refs)
        if ticket is not None:
            which = "In-Reply-To" if matched in msg.in_reply_to else "References"
            reason = f"{which} <{matched}>"
        if ticket is None:
            n = ticket_token(msg.subject)
            if n is not None:
                cand = follow_merges(session, session.get(Ticket, n))
                if cand is not None and resolve_customer(session, cand.customer_id).id == cust.id:
                    ticket, reason = cand, f"[#{n}] token in the subject"
    elif kind == "telegram":
        q = (
            select(Ticket)
            .where(Ticket.customer_id == cust.id, Ticket.channel == msg.channel)
            .where(col(Ticket.status).in_(OPEN_STATUSES + ("solved",)))
            .order_by(col(Ticket.id).desc())
        )
        ticket = session.exec(q).first()
        if ticket is not None:
            reason = "open Telegram chat"
    reopened = False
    if ticket is not None and ticket.status == "closed":
        reason = f"new ticket (#{ticket.id} is closed)"
        ticket = None
    created = ticket is None
    if ticket is None:
        if kind == "telegram":
            subject = _telegram_subject(msg)
        else:
            subject = clean_subject(msg.subject) or "(no subject)"
        reply_to = (
            str(msg.extra.get("chat_id") or sender)
            if kind == "telegram"
            else (normalize_email(cust_addr) if outbound else normalize_email(sender))
        )
        ticket = Ticket(
            subject=subject[:300],
            status="new",
            channel=msg.channel,
            kind=kind,
            customer_id=cust.id,
            created_at=sent_at,
            updated_at=sent_at,
            reply_to_address=reply_to,
        )
        priority_rules.apply_to_new(desk, ticket, cust_addr if outbound else sender)
        if historical and outbound:
            ticket.status = "open"
        session.add(ticket)
        session.flush()
        reason = reason or "new ticket"
        sla.apply_due_times(desk.config, ticket)
        events.record(
            session,
            "created",
            agent="system",
            ticket_id=ticket.id,
            customer_id=cust.id,
            at=sent_at,
            channel=msg.channel,
            subject=ticket.subject,
        )

    assert ticket is not None and ticket.id is not None
    direction = "out" if outbound else "in"
    message = Message(
        ticket_id=ticket.id,
        direction=direction,
        channel=msg.channel,
        kind=kind,
        author=msg.sender_name or sender,
        author_address=sender,
        customer_id=None if outbound else cust.id,
        dedupe_key=key,
        message_id=msg.external_id,
        in_reply_to=(msg.in_reply_to[-1] if msg.in_reply_to else None),
        references=" ".join(msg.references[-50:]),
        subject=msg.subject[:998],
        text=msg.text,
        quoted_text=msg.quoted_text,
        html=msg.html,
        created_at=sent_at,
        received_at=now,
        thread_reason=reason,
        raw_sha256=raw_sha256,
        auto_reason=msg.auto_reason,
    )
    session.add(message)
    session.flush()
    if msg.attachments:
        _store_attachments(desk, session, message, msg)

    ticket.message_count += 1
    ticket.last_message_id = message.id
    if sent_at > ticket.updated_at:
        ticket.updated_at = sent_at
    if outbound:
        ticket.last_agent_at = max(filter(None, [ticket.last_agent_at, sent_at]))
        if ticket.first_response_at is None or sent_at < ticket.first_response_at:
            if sent_at >= ticket.created_at:
                ticket.first_response_at = sent_at
        if ticket.status == "new":
            ticket.status = "open"
        events.record(
            session,
            "reply",
            agent=msg.sender_name or "agent",
            ticket_id=ticket.id,
            message_id=message.id,
            at=sent_at,
            imported=True,
        )
    else:
        ticket.last_customer_at = max(filter(None, [ticket.last_customer_at, sent_at]))
        rating = False
        if not created and ticket.csat_requested_at is not None and ticket.csat_score is None:
            from supportdesk.services import csat

            # "5" (or "4 thanks") answering the survey: a rating, not a reason to reopen
            rating = csat.maybe_rating_reply(session, desk, ticket, msg.text, at=sent_at)
        if not created and not rating and ticket.status in ("pending", "solved"):
            before = ticket.status
            ticket.status = "open"
            reopened = True
            if before == "solved":
                ticket.solved_at = None
            events.record(
                session,
                "status",
                agent="system",
                ticket_id=ticket.id,
                at=sent_at,
                before=before,
                after="open",
                why="customer replied",
            )
        events.record(
            session,
            "message_in",
            agent="system",
            ticket_id=ticket.id,
            customer_id=cust.id,
            message_id=message.id,
            at=sent_at,
            reason=reason,
        )
    sla.update_clocks(desk.config, ticket, sent_at)
    session.add(ticket)

    needs_ack = False
    if created and not historical and not outbound:
        needs_ack = _ack_allowed(session, desk, msg, sender)
    from supportdesk.services import search_index

    search_index.index_message(session, message, ticket)
    outcome: Outcome = "outbound" if outbound else ("new_ticket" if created else "joined")
    if reopened:
        reason += " (reopened)"
    return IngestResult(outcome, ticket.id, message.id, cust.id, reason, needs_ack)


def quarantine(
    session: Session, *, channel: str, source: str, raw_sha256: str, error: str
) -> Quarantine:
    """Keep a message that could not be understood; the rest of the batch goes on."""
    row = session.exec(
        select(Quarantine).where(
            Quarantine.raw_sha256 == raw_sha256, col(Quarantine.resolved_at).is_(None)
        )
    ).first()
    if row is not None:
        row.attempts += 1
        row.error = error[:1000]
        session.add(row)
        return row
    row = Quarantine(
        channel=channel, source=source[:500], raw_sha256=raw_sha256, error=error[:1000]
    )
    session.add(row)
    return row
