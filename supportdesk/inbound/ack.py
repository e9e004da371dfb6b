"""Automatic acknowledgements: one per new ticket from a person, never into a mail loop."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, col, func, select

from supportdesk.channels.base import InboundMessage
from supportdesk.desk.desk import Desk
from supportdesk.desk.identity import normalize_email
from supportdesk.sla import clocks as sla
from supportdesk.store.models import AckLog, Message, Template, Ticket, utcnow

_ROBOTS = ("mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply", "do-not-reply")

DEFAULT_ACK = {
    "en": (
        "Hello {{ customer.name }},\n\nthank you for writing to {{ desk.name }}. Your request is "
        "ticket #{{ ticket.id }}. We answer within {{ sla.first_response }}.\n\n"
        "To add details, just reply to this message."
    ),
    "ru": (
        "Здравствуйте, {{ customer.name }}!\n\nСпасибо за обращение в {{ desk.name }}. Номер вашей "
        "заявки — #{{ ticket.id }}. Мы ответим в течение {{ sla.first_response }}.\n\n"
        "Чтобы дополнить заявку, просто ответьте на это сообщение."
    ),
}


def ack_allowed(session: Session, desk: Desk, msg: InboundMessage, address: str) -> bool:
    if msg.auto_reason:
        return False
    for ch in desk.config.channel:
        if ch.name == msg.channel and not ch.acknowledge:
            return False
    if msg.kind == "email":
        addr = normalize_email(address)
        if addr in desk.own_addresses:
            return False
        local = addr.split("@")[0]
        if any(local.startswith(r) for r in _ROBOTS):
            return False
    elif msg.kind == "telegram" and msg.extra.get("group"):
        return False
    return _under_hourly_limit(session, desk, address)


def _under_hourly_limit(session: Session, desk: Desk, address: str) -> bool:
    """Fewer automatic replies to ``address`` in the last hour than the desk allows."""
    since = utcnow() - timedelta(hours=1)
    count = session.exec(
        select(func.count())
        .select_from(AckLog)
        .where(AckLog.address == address.lower(), col(AckLog.sent_at) >= since)
    ).one()
    return int(count) < max(desk.config.desk.ack_limit_per_hour, 0)


def _looks_russian(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return False
    cyr = sum(1 for c in letters if "\u0400" <= c <= "\u04ff")
    return cyr / len(letters) > 0.3


def queue_ack(session: Session, desk: Desk, ticket: Ticket, address: str) -> Message | None:
    """Queue the acknowledgement for a new ticket (in the caller's transaction)."""
    from supportdesk.outbound import outbox
    from supportdesk.replies import templating

    if ticket.ack_sent:
        return None
    if not _under_hourly_limit(session, desk, address):
        return None  # a loop or a flood: the limit holds within one batch too
    first = session.get(Message, ticket.last_message_id) if ticket.last_message_id else None
    lang = "ru" if first is not None and _looks_russian(first.text + " " + ticket.subject) else "en"
    promised = sla.humanize(
        sla.promised_response(desk.config, ticket.kind, ticket.channel, ticket.priority), lang
    )
    name = desk.config.desk.ack_template
    tpl = (
        session.exec(select(Template).where(Template.name == f"{name}-{lang}")).first()
        or session.exec(select(Template).where(Template.name == name)).first()
    )
    source = tpl.body if tpl is not None else DEFAULT_ACK[lang]
    text = templating.render_text(
        session, desk, source, ticket, extra={"sla": {"first_response": promised}}, strict=False
    )
    msg = outbox.queue_outbound(session, desk, ticket, text, agent="system", auto=True)
    ticket.ack_sent = True
    session.add(ticket)
    session.add(AckLog(address=address.lower()))
    return msg
