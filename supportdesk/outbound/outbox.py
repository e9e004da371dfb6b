"""The durable outbox: every reply is a row here before anything is sent.

States: ``queued`` -> ``sending`` (claimed by the runner holding the lease epoch in
``claim_epoch``) -> ``sent``; or ``failed`` (permanent refusal, or out of attempts), ``cancelled``
(an agent stopped it before it went out), ``in_doubt`` (the send may have happened before a
crash and the channel has no idempotency key: never resent silently; an agent resends or drops
it), ``dropped`` (an agent decided not to resend an in-doubt item).

Long because: queueing, the delivery states, retries with backoff, the in-doubt state and
cancelling are one state machine over one table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from supportdesk.channels.base import Capabilities
from supportdesk.desk import audit as events
from supportdesk.desk.desk import BadInput, Conflict, Desk, NotFound
from supportdesk.store.files import sha256_hex, store_attachment
from supportdesk.store.models import AttachmentRow, Message, Outbox, Ticket, utcnow

MAX_ATTEMPTS = 12


def channel_address(desk: Desk, channel: str) -> str:
    for ch in desk.config.channel:
        if ch.name == channel:
            return ch.from_address()
    return ""


def _thread_ids(session: Session, ticket_id: int) -> tuple[str, list[str]]:
    rows = session.exec(
        select(Message.message_id, Message.direction)
        .where(Message.ticket_id == ticket_id, col(Message.message_id).is_not(None))
        .where(col(Message.direction).in_(["in", "out"]))
        .order_by(col(Message.created_at), col(Message.id))
    ).all()
    chat = ("tg:", "sha256:", "web:", "web-out:", "webform:")
    ids = [m for m, _d in rows if m and not m.startswith(chat)]
    last_in = ""
    for m, d in rows:
        if d == "in" and m and not m.startswith(chat):
            last_in = m
    return last_in, ids[-20:]


def _check_window(
    session: Session,
    desk: Desk,
    ticket: Ticket,
    channel: str,
    now: datetime,
    payload: dict[str, Any],
    approved_template: str | None,
) -> None:
    """Refuse a free-form reply outside the channel's reply window; note when it closes."""
    from supportdesk.outbound.window import window_for

    window = window_for(session, desk, ticket, channel)
    if window is None:
        if approved_template:
            raise BadInput(f"channel {channel} has no approved templates (approved_template)")
        return
    if approved_template:
        names = [t.partition(":")[0].strip() for t in window.templates]
        if approved_template not in names:
            approved = ", ".join(window.templates) or "none configured"
            raise BadInput(
                f"{approved_template!r} is not an approved template of channel {channel} "
                f"(approved: {approved})"
            )
        payload["approved_template"] = approved_template
        return
    if not window.open_at(now):
        raise BadInput(window.closed_sentence())
    closes = window.closes_at
    if closes is not None:
        payload["window_closes_at"] = closes.isoformat()


def _writer_answered(session: Session, ticket: Ticket) -> str | None:
    """The address of whoever wrote the message being answered (the last one in), when that is
    not the ticket's customer: after a merge of two customers' tickets, a reply goes to the
    person who wrote, never to the other customer."""
    from supportdesk.desk.identity import resolve_customer

    last = session.exec(
        select(Message.customer_id, Message.author_address, Message.kind)
        .where(Message.ticket_id == ticket.id, Message.direction == "in")
        .where(col(Message.thread_reason).not_like("%third party%"))
        .order_by(col(Message.created_at).desc(), col(Message.id).desc())
        .limit(1)
    ).first()
    if last is None or last[0] is None or not last[1] or last[2] != ticket.kind:
        return None
    if last[0] == ticket.customer_id:
        return None
    if resolve_customer(session, last[0]).id == resolve_customer(session, ticket.customer_id).id:
        return None
    return str(last[1])


def queue_outbound(
    session: Session,
    desk: Desk,
    ticket: Ticket,
    text: str,
    *,
    agent: str,
    note: bool = False,
    auto: bool = False,
    subject: str | None = None,
    channel: str | None = None,
    to_address: str | None = None,
    buttons: list[list[dict[str, str]]] | None = None,
    attachments: list[Path] | None = None,
    batch: str | None = None,
    at: datetime | None = None,
    template: str | None = None,
    approved_template: str | None = None,
    template_params: list[str] | None = None,
    cc: list[str] | None = None,
    bcc: list[str] | None = None,
    to_name: str | None = None,
    forward: bool = False,
    forward_files: list[AttachmentRow] | None = None,
    markdown: str | None = None,
) -> Message:
    """Store an agent reply (or note) on the ticket and, unless a note, queue it for sending.

    ``approved_template`` sends one of the channel's provider-approved templates (with
    ``template_params``) instead of free text: the only thing a channel with a reply window
    (WhatsApp) accepts once the customer's last message is older than the window.
    ``cc``/``bcc`` add e-mail recipients. ``forward`` sends the message to a third party
    (``to_address``): recorded in the thread, but not an answer to the customer (no first
    response, no status change); ``forward_files`` are stored attachments sent along.
    """
    if approved_template and not text.strip():
        text = f"[{approved_template}] " + " · ".join(template_params or [])
    if not text.strip() and not attachments and not forward_files:
        raise BadInput("the reply is empty")
    if ticket.id is None:
        raise NotFound("the ticket does not exist")
    now = at or utcnow()
    channel = channel or ticket.channel
    from supportdesk.channels.registry import configured_class

    cls = configured_class(desk.config, channel, ticket.kind)
    kind = cls.identity_kind if cls is not None else ticket.kind
    caps = cls.capabilities if cls is not None else Capabilities()
    if not note and kind == "phone":
        raise BadInput("a phone ticket cannot be answered in writing; add a note instead")
    msg = Message(
        ticket_id=ticket.id,
        direction="note" if note else "out",
        channel=channel,
        kind=kind,
        author=agent,
        author_address="" if note else channel_address(desk, channel),
        text=text,
        created_at=now,
        received_at=now,
        is_auto=auto,
        subject="",
    )
    outbox: Outbox | None = None
    if not note:
        dest = to_address or _writer_answered(session, ticket) or ticket.reply_to_address
        if not dest:
            raise BadInput(f"ticket #{ticket.id} has no address to reply to")
        cc_list = clean_addresses(cc or [], "Cc", exclude=[dest])
        bcc_list = clean_addresses(bcc or [], "Bcc", exclude=[dest, *cc_list])
        if (cc_list or bcc_list) and not caps.cc:
            raise BadInput(f"Cc and Bcc need an e-mail channel; {channel} is {kind}")
        if forward and caps.cc:
            clean_addresses([dest], "To")
        last_in, refs = _thread_ids(session, ticket.id)
        subj = reply_subject(ticket, subject, auto=auto, forward=forward)
        msg.message_id = (cls.reply_id(channel_address(desk, channel)) if cls else "") or None
        msg.dedupe_key = msg.message_id
        if caps.subjects:
            msg.in_reply_to = last_in or None
            msg.references = " ".join(refs)
            msg.to_addresses = dest
            msg.cc_addresses = " ".join(cc_list)
            msg.bcc_addresses = " ".join(bcc_list)
        msg.subject = subj
        payload: dict[str, Any] = {
            "subject": subj,
            "auto": auto,
            "in_reply_to": last_in,
            "references": refs,
        }
        if caps.live_chat and not auto:
            payload["author"] = agent  # the widget names who answered, as its history does
        if cc_list:
            payload["cc"] = cc_list
        if bcc_list:
            payload["bcc"] = bcc_list
        if forward:
            payload["forward"] = True
        if to_name is not None:
            payload["to_name"] = to_name
        if caps.html and not auto:
            from supportdesk.core.markup import markdown_to_html

            payload["html"] = markdown_to_html(text if markdown is None else markdown)
        if buttons:
            payload["buttons"] = buttons
        if template:
            payload["template"] = template
        if not auto:
            _check_window(session, desk, ticket, channel, now, payload, approved_template)
        if approved_template:
            payload["template_params"] = [str(p) for p in template_params or []]
        outbox = Outbox(
            ticket_id=ticket.id,
            channel=channel,
            kind=kind,
            to_address=dest,
            state="queued",
            next_attempt_at=now,
            external_message_id=msg.message_id or "",
            payload=json.dumps(payload, ensure_ascii=False),
            created_at=now,
        )
    session.add(msg)
    session.flush()
    if outbox is not None:
        outbox.message_id = msg.id
        session.add(outbox)
        session.flush()
    limit = attachment_limit(kind)
    total = 0
    for path in attachments or []:
        try:
            total += path.stat().st_size
        except OSError as exc:
            raise BadInput(f"cannot read {path}: {exc.strerror}") from None
    if attachments and not note and total > limit:
        raise BadInput(
            f"the attachments add up to {total / 1048576:.1f} MB; a {kind} message carries "
            f"at most {limit / 1048576:.0f} MB"
            if limit
            else f"a {kind} message cannot carry attachments"
        )
    for i, path in enumerate(attachments or []):
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise BadInput(f"cannot read {path}: {exc.strerror}") from None
        rel = store_attachment(desk.home, f"out-{msg.id}", i, path.name, data)
        session.add(
            AttachmentRow(
                message_id=msg.id,
                outbox_id=outbox.id if outbox else None,
                filename=path.name,
                stored_path=rel,
                size=len(data),
                sha256=sha256_hex(data),
            )
        )
    for row in forward_files or []:
        if not row.stored_path:
            continue
        session.add(
            AttachmentRow(
                message_id=msg.id,
                outbox_id=outbox.id if outbox else None,
                filename=row.filename,
                stored_path=row.stored_path,  # the same stored file: nothing is copied
                size=row.size,
                content_type=row.content_type,
                sha256=row.sha256,
            )
        )
    ticket.message_count += 1
    ticket.updated_at = max(ticket.updated_at, now)
    ticket.last_message_id = msg.id
    if not note and not auto and not forward:
        ticket.last_agent_at = now
        # first_response_at is set when the reply is delivered (runner.state.mark_sent)
        if ticket.status == "new":
            ticket.status = "open"
        from supportdesk.sla import clocks as sla

        sla.refresh_due(ticket)
    session.add(ticket)
    events.record(
        session,
        "note" if note else ("auto_reply" if auto else "forward" if forward else "reply"),
        agent=agent,
        ticket_id=ticket.id,
        message_id=msg.id,
        batch=batch,
        at=now,
        outbox_id=outbox.id if outbox else None,
        channel=channel,
    )
    from supportdesk.search import index as search_index

    search_index.index_message(session, msg, ticket)
    return msg


def attachment_limit(kind: str) -> int:
    """The most bytes of attachments one message to a ``kind`` address may carry (0: none), as
    the channel speaking that kind declares it (``Capabilities.max_attachment_bytes``)."""
    from supportdesk.channels.registry import class_for_kind

    cls = class_for_kind(kind)
    if cls is None:  # a phone ticket, or no installed channel speaks the kind
        return 0
    caps = cls.capabilities
    return caps.max_attachment_bytes if caps.attachments else 0


def reply_subject(
    ticket: Ticket, subject: str | None = None, *, auto: bool = False, forward: bool = False
) -> str:
    """The subject a reply (or forward) goes out with: the ticket's, with its [#N] token."""
    base = subject if subject is not None else ticket.subject
    token = f"[#{ticket.id}]"
    if forward:
        return f"Fwd: {base}" + ("" if token in base else f" {token}")
    if token in base:
        return base
    return f"Re: {base} {token}".strip() if not auto else f"{base} {token}"


def clean_addresses(addresses: list[str], role: str, *, exclude: Sequence[str] = ()) -> list[str]:
    """E-mail addresses checked and normalized, without duplicates or those in ``exclude``;
    BadInput naming the first one that is not an address."""
    from supportdesk.desk.identity import normalize_email

    skip = {normalize_email(a) for a in exclude}
    out: list[str] = []
    for raw in addresses:
        for part in raw.replace(";", ",").split(","):
            text = part.strip()
            if not text:
                continue
            if "<" in text and text.endswith(">"):
                text = text.rpartition("<")[2][:-1].strip()
            local, at, domain = text.rpartition("@")
            if (
                not at
                or not local
                or "." not in domain
                or any(ch.isspace() or ch in '<>,;"\\' or not ch.isprintable() for ch in text)
            ):
                raise BadInput(f"the {role} address {part.strip()!r} is not an e-mail address")
            norm = normalize_email(text)
            if norm not in skip and norm not in out:
                out.append(norm)
    return out


def backoff(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s ... capped at 30 minutes."""
    return timedelta(seconds=min(5 * 2 ** max(attempts - 1, 0), 1800))


def list_outbox(
    session: Session, *, states: list[str] | None = None, limit: int | None = 200
) -> list[Outbox]:
    q = select(Outbox).order_by(col(Outbox.id).desc())
    if limit is not None:
        q = q.limit(limit)
    if states:
        q = q.where(col(Outbox.state).in_(states))
    return list(session.exec(q).all())


def _change_state(
    session: Session, desk: Desk, outbox_id: int, state: str, kind: str, refusals: dict[str, str]
) -> Outbox:
    """Move an outbox item to ``state`` with an audit event; ``refusals``: state -> why not."""
    row = session.get(Outbox, outbox_id)
    if row is None:
        raise NotFound(f"there is no outbox item {outbox_id}")
    if row.state in refusals:
        raise Conflict(f"outbox item {outbox_id} {refusals[row.state]}")
    before = row.state
    row.state = state
    row.claim_epoch = None
    row.in_flight_at = None
    if state == "queued":
        row.next_attempt_at = utcnow()
    session.add(row)
    events.record(
        session,
        kind,
        agent=desk.agent,
        ticket_id=row.ticket_id,
        outbox_id=row.id,
        before=before,
        after=state,
    )
    return row


STATES = ("queued", "sending", "sent", "failed", "cancelled", "in_doubt", "dropped")
_IN_DOUBT = (
    "is in doubt (it may have arrived): send it again with `outbox resend` or leave it with "
    "`outbox drop`"
)


def retry(session: Session, desk: Desk, outbox_id: int) -> Outbox:
    """Queue a failed (or cancelled) item again; never one that was sent."""
    return _change_state(
        session,
        desk,
        outbox_id,
        "queued",
        "outbox_retry",
        {
            "sent": "was already sent; it will not be sent twice",
            "sending": "is being sent right now",
            "in_doubt": _IN_DOUBT,
            "dropped": "was dropped after a send that may have arrived; use `outbox resend`",
        },
    )


def cancel(session: Session, desk: Desk, outbox_id: int) -> Outbox:
    """Stop an item that was not sent yet."""
    return _change_state(
        session,
        desk,
        outbox_id,
        "cancelled",
        "outbox_cancel",
        {
            "sent": "was already sent and cannot be cancelled",
            "sending": "is being sent right now; try again in a moment",
            "in_doubt": _IN_DOUBT,
            "dropped": "was dropped already",
        },
    )


_NOT_IN_DOUBT = {
    "sent": "was sent; it will not be sent twice",
    "sending": "is being sent right now",
    "queued": "is queued and will be sent; it is not in doubt",
    "failed": "failed and is not in doubt; use `outbox retry`",
    "cancelled": "was cancelled and is not in doubt; use `outbox retry`",
}


def resend(session: Session, desk: Desk, outbox_id: int) -> Outbox:
    """An agent decided that an in-doubt (or dropped) item did not arrive: send it again."""
    return _change_state(session, desk, outbox_id, "queued", "outbox_resend", _NOT_IN_DOUBT)


def drop(session: Session, desk: Desk, outbox_id: int) -> Outbox:
    """An agent decided not to send an in-doubt item again (it arrived, or is moot)."""
    return _change_state(
        session,
        desk,
        outbox_id,
        "dropped",
        "outbox_drop",
        {**_NOT_IN_DOUBT, "dropped": "was dropped already"},
    )


def in_doubt_of(session: Session, ticket_id: int) -> list[Outbox]:
    """A ticket's outbox items in doubt (shown on the ticket until an agent decides)."""
    return list(
        session.exec(
            select(Outbox)
            .where(Outbox.ticket_id == ticket_id, Outbox.state == "in_doubt")
            .order_by(col(Outbox.id))
        ).all()
    )


def delivery_of(session: Session, message_ids: list[int]) -> dict[int, Outbox]:
    if not message_ids:
        return {}
    rows = session.exec(select(Outbox).where(col(Outbox.message_id).in_(message_ids))).all()
    return {r.message_id: r for r in rows if r.message_id is not None}


def queue_plain(
    session: Session,
    *,
    channel: str,
    kind: str,
    to_address: str,
    text: str,
    ticket_id: int | None = None,
    auto: bool = True,
) -> Outbox:
    """An outbox row without a ticket message (a messenger's greeting)."""
    row = Outbox(
        ticket_id=ticket_id,
        channel=channel,
        kind=kind,
        to_address=to_address,
        state="queued",
        next_attempt_at=utcnow(),
        payload=json.dumps({"text": text, "auto": auto}, ensure_ascii=False),
    )
    session.add(row)
    return row
