"""Replies and notes: the text (typed, from a template, with the agent's signature), the channel
and recipients it goes to, a preview of exactly what goes out, and the outbox row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, col, select

from supportdesk.desk import audit as events
from supportdesk.desk.desk import BadInput, Desk
from supportdesk.desk.records import get_ticket
from supportdesk.sla import clocks as sla
from supportdesk.store.models import (
    Message,
    Ticket,
)
from supportdesk.tickets.triage import check_not_merged


def template_text(session: Session, desk: Desk, name: str, ticket: Ticket) -> tuple[str, str]:
    from supportdesk.replies.templates import render_template

    return render_template(session, desk, name, ticket, count_use=True)


def _channel_for(
    desk: Desk, session: Session, ticket: Ticket, channel: str | None
) -> tuple[str | None, str | None]:
    """(channel, to_address) for a reply on another channel than the ticket's."""
    if channel is None or channel == ticket.channel:
        return None, None
    match = [c for c in desk.config.channel if c.name == channel]
    if not match:
        known = ", ".join(c.name for c in desk.config.channel) or "none"
        raise BadInput(f"there is no channel named {channel!r} (configured: {known})")
    from supportdesk.channels.registry import channel_kind

    kind = channel_kind(match[0])
    if kind == ticket.kind:
        return channel, None
    from supportdesk.desk.identity import resolve_customer
    from supportdesk.store.models import Identity

    cust = resolve_customer(session, ticket.customer_id)
    ident = session.exec(
        select(Identity).where(Identity.customer_id == cust.id, Identity.kind == kind)
    ).first()
    if ident is None:
        raise BadInput(
            f"the customer of ticket #{ticket.id} has no {kind} identity to reach on {channel!r}"
        )
    return channel, ident.address


def reply(
    desk: Desk,
    ticket_id: int,
    *,
    text: str | None = None,
    template: str | None = None,
    note: bool = False,
    attachments: list[Path] | None = None,
    channel: str | None = None,
    approved_template: str | None = None,
    template_params: list[str] | None = None,
    cc: list[str] | None = None,
    bcc: list[str] | None = None,
    reply_all: bool = False,
    to: str | None = None,
    status: str | None = None,
    from_template: str | None = None,
) -> Message:
    """Queue a reply (or store an internal note) on a ticket; a template's use is counted.
    ``approved_template``: one of the channel's provider-approved templates (WhatsApp outside
    the 24-hour window). ``reply_all`` adds the thread's other participants (inbound To/Cc) in
    Cc; ``cc``/``bcc`` add more; ``to`` replaces the customer's address. ``status`` (pending,
    solved) is set in the same transaction ("send and solve"). ``from_template`` names the
    template an edited ``text`` was written from (the console's composer): it counts as a use,
    in the same transaction as the reply."""
    if text is None and template is None and not approved_template:
        raise BadInput("give the reply text or a template")
    if status is not None and status not in ("open", "pending", "solved"):
        raise BadInput(f"the status after a reply is open, pending or solved, not {status!r}")
    for p in attachments or []:
        if not p.is_file():
            raise BadInput(f"the attachment {p} is not a readable file")
    rendered = ""
    if text is None and not approved_template:
        # the template renders before the write transaction: a slow one holds up no writer
        from supportdesk.replies.templates import render_template

        with desk.db.read() as s:
            t = get_ticket(s, ticket_id)
            check_not_merged(t)
            rendered = render_template(s, desk, template or "", t)[1]
    with desk.db.write() as s:
        t = get_ticket(s, ticket_id)
        check_not_merged(t)
        if text is not None or approved_template:
            body = text or ""
        else:
            body = rendered
        # a template's use is counted in this transaction (one edited in the composer too)
        counted = from_template if text is not None else (None if approved_template else template)
        if counted:
            from supportdesk.replies.templates import get_template

            tpl = get_template(s, counted)
            tpl.usage_count += 1
            s.add(tpl)
            template = counted
        ch, to_address = _channel_for(desk, s, t, channel)
        from supportdesk.outbound.outbox import queue_outbound
        from supportdesk.tickets.recipients import reply_recipients

        extra_cc: list[str] = []
        if reply_all and not note:
            extra_cc = reply_recipients(s, desk, t, reply_all=True).cc
        if not note and not approved_template:
            body = with_signature(s, desk, t, body, ch or t.channel)
        msg = queue_outbound(
            s,
            desk,
            t,
            body,
            agent=desk.agent,
            note=note,
            attachments=attachments,
            channel=ch,
            to_address=to or to_address,
            template=template,
            approved_template=approved_template,
            template_params=template_params,
            cc=None if note else [*extra_cc, *(cc or [])],
            bcc=None if note else bcc,
        )
        if status is not None and not note and t.status != status:
            before = t.status
            t.status = status
            now = msg.created_at
            if status == "solved":
                t.solved_at = now
            sla.refresh_due(t)
            s.add(t)
            events.record(s, "status", agent=desk.agent, ticket_id=t.id, before=before,
                          after=status, at=now)  # fmt: skip
        return msg


def never_answered(desk: Desk, ids: list[int]) -> list[int]:
    """Those of ``ids`` that never got an agent reply (closing them deserves a second look)."""
    if not ids:
        return []
    from supportdesk.store.models import Message as Msg

    with desk.db.read() as s:
        answered = set(
            s.exec(
                select(Msg.ticket_id)
                .where(
                    col(Msg.ticket_id).in_(ids), Msg.direction == "out", col(Msg.is_auto).is_(False)
                )
                .distinct()
            ).all()
        )
    return [i for i in ids if i not in answered]


@dataclass
class Preview:
    """Exactly what a reply would send, before it is queued."""

    kind: str
    channel: str
    sender: str
    to: str
    cc: list[str]
    bcc: list[str]
    subject: str
    text: str
    html: bool
    attachments: list[tuple[str, int]]
    limit: int
    note: bool


def preview_reply(
    desk: Desk,
    ticket_id: int,
    *,
    text: str,
    note: bool = False,
    channel: str | None = None,
    cc: list[str] | None = None,
    bcc: list[str] | None = None,
    reply_all: bool = False,
    to: str | None = None,
    attachments: list[Path] | None = None,
) -> Preview:
    """The recipients, subject, text (signature included) and files of a reply, checked as
    queueing would check them (BadInput naming the field), without queueing anything."""
    from supportdesk.outbound.outbox import (
        attachment_limit,
        channel_address,
        clean_addresses,
        reply_subject,
    )
    from supportdesk.tickets.recipients import reply_recipients

    if not text.strip() and not attachments:
        raise BadInput("the reply is empty")
    files: list[tuple[str, int]] = []
    for p in attachments or []:
        if not p.is_file():
            raise BadInput(f"the attachment {p} is not a readable file")
        files.append((p.name, p.stat().st_size))
    with desk.db.read() as s:
        t = get_ticket(s, ticket_id)
        ch, to_address = _channel_for(desk, s, t, channel)
        ch = ch or t.channel
        from supportdesk.channels.base import Capabilities
        from supportdesk.channels.registry import configured_class

        cls = configured_class(desk.config, ch, t.kind)
        kind = cls.identity_kind if cls is not None else t.kind
        caps = cls.capabilities if cls is not None else Capabilities()
        dest = to or to_address or t.reply_to_address
        limit = attachment_limit(kind)
        if note:
            return Preview(kind, ch, "", "", [], [], "", text, False, files, limit, True)
        extra = reply_recipients(s, desk, t, reply_all=True).cc if reply_all else []
        cc_list = clean_addresses([*extra, *(cc or [])], "Cc", exclude=[dest])
        bcc_list = clean_addresses(bcc or [], "Bcc", exclude=[dest, *cc_list])
        if (cc_list or bcc_list) and not caps.cc:
            raise BadInput(f"Cc and Bcc need an e-mail channel; {ch} is {kind}")
        if sum(size for _n, size in files) > limit:
            raise BadInput(
                f"the attachments add up to {sum(n for _f, n in files) / 1048576:.1f} MB; a {kind} "
                f"message carries at most {limit / 1048576:.0f} MB"
            )
        body = with_signature(s, desk, t, text, ch)
        return Preview(
            kind=kind,
            channel=ch,
            sender=channel_address(desk, ch),
            to=dest,
            cc=cc_list,
            bcc=bcc_list,
            subject=reply_subject(t) if caps.subjects else "",
            text=body,
            html=caps.html,
            attachments=files,
            limit=limit,
            note=False,
        )


def with_signature(session: Session, desk: Desk, ticket: Ticket, body: str, channel: str) -> str:
    """``body`` with the agent's and the channel's signatures in the customer's language
    (the desk's when unknown), each added once."""
    import json as json_mod

    from supportdesk.desk.identity import resolve_customer
    from supportdesk.store.models import Agent

    lang = (resolve_customer(session, ticket.customer_id).language or "").split("-")[0]
    lang = lang or desk.config.desk.language or "en"
    parts: list[str] = []
    agent = session.exec(select(Agent).where(Agent.name == desk.agent)).first()
    sigs: dict[str, str] = {}
    if agent is not None and agent.signature:
        try:
            sigs = json_mod.loads(agent.signature)
        except ValueError:
            sigs = {}
    if isinstance(sigs, dict) and (sigs.get(lang) or sigs.get("en")):
        parts.append(str(sigs.get(lang) or sigs.get("en")))
    ch_sigs = desk.config.signatures.get(channel) or {}
    if ch_sigs.get(lang) or ch_sigs.get("en"):
        parts.append(ch_sigs.get(lang) or ch_sigs.get("en") or "")
    out = body.rstrip("\n")
    for sig in parts:
        sig = sig.strip("\n")
        if sig and sig not in out:
            out += ("\n" + sig) if "\n-- \n" in out else ("\n\n-- \n" + sig)
    return out + ("\n" if body.endswith("\n") else "")
