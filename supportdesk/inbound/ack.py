"""Automatic acknowledgements: one per new ticket from a person, never into a mail loop."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from sqlmodel import Session, col, func, select

from supportdesk.channels.base import InboundMessage
from supportdesk.desk.desk import BadInput, Desk
from supportdesk.desk.identity import normalize_address
from supportdesk.sla import clocks as sla
from supportdesk.sla.hours import BusinessHours
from supportdesk.store.models import AckLog, Message, Template, Ticket, utcnow

log = logging.getLogger("supportdesk.inbound.ack")
# an acknowledgement renders inside intake's transaction: a tighter limit than an agent's reply
ACK_TIME_LIMIT = 1.0
_FAILED: set[tuple[str, str]] = set()  # (template name, sha256 of its body) that failed

_ROBOTS = ("mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply", "do-not-reply")

DEFAULT_ACK = {
    "en": (
        "Hello {{ customer.name }},\n\nthank you for writing to {{ desk.name }}. Your request is "
        "ticket #{{ ticket.id }}. We will answer {{ sla.promise }}.\n\n"
        "To add details, just reply to this message."
    ),
    "ru": (
        "Здравствуйте, {{ customer.name }}!\n\nСпасибо за обращение в {{ desk.name }}. Номер вашей "
        "заявки — #{{ ticket.id }}. Мы ответим {{ sla.promise }}.\n\n"
        "Чтобы дополнить заявку, просто ответьте на это сообщение."
    ),
}


def ack_allowed(session: Session, desk: Desk, msg: InboundMessage, address: str) -> bool:
    if msg.auto_reason:
        return False
    if msg.kind == "web":
        return False  # the widget itself shows presence and the promised time, live
    for ch in desk.config.channel:
        if ch.name == msg.channel and not ch.acknowledge:
            return False
    addr = normalize_address(msg.kind, address)
    if addr in desk.own_addresses:
        return False
    if "@" in addr and any(addr.split("@")[0].startswith(r) for r in _ROBOTS):
        return False  # noreply@, mailer-daemon@...
    if msg.extra.get("group"):  # a group chat: nobody there asked for an automatic answer
        return False
    from supportdesk.automation.spam import is_spam_address

    if is_spam_address(session, address):
        return False  # spam gets no acknowledgement
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


_WEEKDAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "ru": ("в понедельник", "во вторник", "в среду", "в четверг", "в пятницу", "в субботу",
           "в воскресенье"),
}  # fmt: skip
_MONTHS_RU = ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
              "сентября", "октября", "ноября", "декабря")  # fmt: skip


def promise(desk: Desk, ticket: Ticket, now: datetime, lang: str) -> str:
    """What the acknowledgement promises: "within 15 min" when the clock runs now, else the
    real deadline in business hours, "by Monday 09:15" / "в понедельник до 09:15"."""
    target = sla.promised_response(desk.config, ticket.kind, ticket.channel, ticket.priority)
    ru = lang.startswith("ru")
    due = ticket.first_response_due_at
    if due is None or due.astimezone(now.tzinfo) <= now + target + timedelta(minutes=1):
        return ("в течение " if ru else "within ") + sla.humanize(target, lang)
    tz = BusinessHours.from_config(desk.config, ticket.channel).tz
    local, today = due.astimezone(tz), now.astimezone(tz).date()
    hhmm = local.strftime("%H:%M")
    days = (local.date() - today).days
    if days == 0:
        return f"сегодня до {hhmm}" if ru else f"today by {hhmm}"
    if days == 1:
        return f"завтра до {hhmm}" if ru else f"by tomorrow {hhmm}"
    if days < 7:
        day = _WEEKDAYS["ru" if ru else "en"][local.weekday()]
        return f"{day} до {hhmm}" if ru else f"by {day} {hhmm}"
    if ru:
        return f"до {local.day} {_MONTHS_RU[local.month - 1]} {hhmm}"
    return f"by {local.day} {local.strftime('%B')} {hhmm}"


def _looks_russian(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return False
    cyr = sum(1 for c in letters if "\u0400" <= c <= "\u04ff")
    return cyr / len(letters) > 0.3


def queue_ack(
    session: Session, desk: Desk, ticket: Ticket, address: str, *, now: datetime | None = None
) -> Message | None:
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
    deadline = promise(desk, ticket, now or utcnow(), lang)
    name = desk.config.desk.ack_template
    tpl = (
        session.exec(select(Template).where(Template.name == f"{name}-{lang}")).first()
        or session.exec(select(Template).where(Template.name == name)).first()
    )
    extra = {"sla": {"first_response": promised, "promise": deadline}}
    text = None
    if tpl is not None:
        key = (tpl.name, hashlib.sha256(tpl.body.encode("utf-8", "replace")).hexdigest())
        if key not in _FAILED:
            try:
                text = templating.render_text(
                    session, desk, tpl.body, ticket, extra=extra, strict=False,
                    seconds=ACK_TIME_LIMIT,
                )  # fmt: skip
            except BadInput as exc:
                # a broken or hostile template never stops intake: the built-in text goes out,
                # and this version of the template is not tried again by this process
                _FAILED.add(key)
                log.warning(
                    "acknowledgement template %r failed (%s); sent the built-in text", tpl.name, exc
                )
    if text is None:
        text = templating.render_text(
            session, desk, DEFAULT_ACK[lang], ticket, extra=extra, strict=False
        )
    if tpl is None or "kb" not in tpl.body:
        text += _articles_block(session, desk, ticket, first, lang, now or utcnow())
    msg = outbox.queue_outbound(session, desk, ticket, text, agent="system", auto=True, at=now)
    ticket.ack_sent = True
    session.add(ticket)
    session.add(AckLog(address=address.lower()))
    return msg


ARTICLES_INTRO = {
    "en": "While you wait, these articles may already answer it:",
    "ru": "Пока вы ждёте, возможно, ответ уже есть в этих статьях:",
}


def _articles_block(
    session: Session, desk: Desk, ticket: Ticket, first: Message | None, lang: str, now: datetime
) -> str:
    """When nobody is at work, up to three public KB articles matching the request (with links
    to the help site a website channel names in ``kb_url``); "" otherwise."""
    from supportdesk.channels.web.config import WebConfig
    from supportdesk.people.presence import agents_online
    from supportdesk.replies import kb

    if agents_online(session, now=now):
        return ""
    found = kb.suggest_public(session, f"{ticket.subject}\n{first.text if first else ''}", 3)
    if not found:
        return ""
    base = next(
        (
            ch.kb_url.rstrip("/")
            for ch in desk.config.channel
            if isinstance(ch, WebConfig) and ch.kb_url
        ),
        "",
    )
    lines = [f"- {a['title']}" + (f" {base}/{a['slug']}.html" if base else "") for a in found]
    return "\n\n" + ARTICLES_INTRO[lang] + "\n" + "\n".join(lines)
