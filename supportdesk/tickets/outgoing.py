"""Conversations the desk starts: forwarding a message or a ticket to another address, a new
ticket to a customer on a channel of the agent's choice, a logged phone call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlmodel import select

from supportdesk.desk import audit as events
from supportdesk.desk.desk import BadInput, Desk
from supportdesk.desk.records import get_ticket
from supportdesk.sla import clocks as sla
from supportdesk.store.models import (
    Message,
    Ticket,
    utcnow,
)
from supportdesk.tickets.replying import template_text, with_signature
from supportdesk.tickets.triage import check_not_merged


def forward(
    desk: Desk,
    ticket_id: int,
    *,
    to: str,
    message_id: int | None = None,
    text: str | None = None,
    cc: list[str] | None = None,
) -> Message:
    """Forward one message (or the whole ticket) with its attachments to ``to``; recorded in
    the thread as an outgoing message, not as an answer to the customer."""
    from supportdesk.channels.registry import channel_kind
    from supportdesk.outbound.outbox import clean_addresses, queue_outbound
    from supportdesk.tickets.recipients import forward_body

    with desk.db.write() as s:
        t = get_ticket(s, ticket_id)
        check_not_merged(t)
        if t.kind != "email":
            email_channels = [c.name for c in desk.config.channel if channel_kind(c) == "email"]
            if not email_channels:
                raise BadInput("forwarding needs an e-mail channel; none is configured")
            channel: str | None = email_channels[0]
        else:
            channel = None
        dest = clean_addresses([to], "To")
        if not dest:
            raise BadInput("give the address to forward to")
        fw = forward_body(s, desk, t, message_id, text or "")
        body = with_signature(s, desk, t, fw.text, channel or t.channel)
        # the HTML part: the agent's words as Markdown, the forwarded mail verbatim
        forwarded = body[len(text or "") :].strip("\n")
        fence = "~" * max(3, 1 + max((len(r) for r in re.findall(r"~+", forwarded)), default=0))
        markdown = f"{text or ''}\n\n{fence}\n{forwarded}\n{fence}\n"
        return queue_outbound(
            s,
            desk,
            t,
            body,
            agent=desk.agent,
            channel=channel,
            to_address=dest[0],
            to_name="",
            subject=fw.subject,
            cc=cc,
            forward=True,
            forward_files=fw.files,
            markdown=markdown,
        )


@dataclass
class NewTicket:
    ticket_id: int
    message_id: int
    customer_id: int
    queued: bool


def new_ticket(
    desk: Desk,
    *,
    customer: str,
    via: str,
    subject: str | None = None,
    text: str | None = None,
    template: str | None = None,
    channel: str | None = None,
) -> NewTicket:
    """Start a conversation on a configured channel of type ``via`` (an e-mail; a message to a
    chat that wrote to the desk before: Telegram, the echo example...), or log a phone call."""
    from supportdesk.channels.registry import channel_class, channel_types
    from supportdesk.desk.identity import get_or_create_customer, normalize_email, normalize_phone
    from supportdesk.outbound.outbox import queue_outbound
    from supportdesk.people.customers import find_customer
    from supportdesk.store.models import Identity

    via = via.strip().lower()
    configured = list(dict.fromkeys(c.type for c in desk.config.channel))
    if via != "phone" and via not in channel_types():
        ways = ", ".join(configured)
        raise BadInput(
            f"the way to reach the customer is {ways + ' or ' if ways else ''}phone, not {via!r}",
            field="via",
        )
    if text is None and template is None:
        raise BadInput("give the text or a template", field="text")
    if text is not None and not text.strip():
        raise BadInput("the message text is empty")
    ch_name = channel
    kind, title, subjects = via, "", True
    if via != "phone":
        chans = [
            c
            for c in desk.config.channel
            if c.type == via and (channel is None or c.name == channel)
        ]
        if not chans:
            raise BadInput(
                f"no {via} channel is configured" + (f" named {channel!r}" if channel else "")
            )
        ch_name = chans[0].name
        cls = channel_class(via)
        kind, title, subjects = cls.identity_kind, cls.title, cls.capabilities.subjects
    with desk.db.write() as s:
        if kind == "email":
            addr = customer.strip()
            if "@" in addr:
                cust, ident, _new = get_or_create_customer(s, "email", addr)
            else:
                cust = find_customer(s, addr)
                found = s.exec(
                    select(Identity).where(
                        Identity.customer_id == cust.id, Identity.kind == "email"
                    )
                ).first()
                if found is None:
                    raise BadInput(
                        f"customer {cust.id} has no e-mail address; name the address instead",
                        field="customer",
                    )
                ident = found
            dest = normalize_email(ident.address)
        elif via != "phone":
            # a messenger: the customer must have written to it first (its chat id is known)
            cust = find_customer(s, customer)
            known = s.exec(
                select(Identity).where(Identity.customer_id == cust.id, Identity.kind == kind)
            ).first()
            if known is None:
                raise BadInput(
                    f"customer {cust.id} has never written to the desk on {title}, "
                    "so it cannot message them there"
                )
            dest = known.address
        else:
            digits = re.sub(r"[^\d]", "", customer)
            if customer.strip().startswith("+") or len(digits) >= 7:
                cust, ident, _new = get_or_create_customer(s, "phone", customer)
                dest = normalize_phone(customer)
            else:
                cust = find_customer(s, customer)
                dest = cust.phone
            ch_name = "phone"
        now = utcnow()
        t = Ticket(
            subject=(subject or "").strip()[:300],
            status="open",
            channel=ch_name or via,
            kind=kind,
            customer_id=cust.id or 0,
            created_at=now,
            updated_at=now,
            reply_to_address=dest,
        )
        s.add(t)
        s.flush()
        body = text
        if template is not None:
            tsubj, body = template_text(s, desk, template, t)
            if not t.subject:
                t.subject = tsubj.strip()[:300]
        if not t.subject:
            if not subjects and body:  # a chat: titled by its first line
                t.subject = body.strip().splitlines()[0][:80]
            else:
                raise BadInput("give a subject (or a template with a subject)", field="subject")
        sla.apply_due_times(desk.config, t)
        events.record(
            s,
            "created",
            agent=desk.agent,
            ticket_id=t.id,
            customer_id=cust.id,
            channel=t.channel,
            subject=t.subject,
            via=via,
            started_by_agent=True,
        )
        if via == "phone":
            msg = queue_outbound(
                s, desk, t, body or "", agent=desk.agent, note=True, template=template
            )
            t.first_response_at = now
            t.last_agent_at = now
            sla.refresh_due(t)
            s.add(t)
        else:
            msg = queue_outbound(
                s,
                desk,
                t,
                body or "",
                agent=desk.agent,
                subject=f"{t.subject} [#{t.id}]",
                channel=ch_name,
                to_address=dest,
                template=template,
            )
        return NewTicket(t.id or 0, msg.id or 0, cust.id or 0, via != "phone")
