"""Automatic acknowledgements: one per new ticket from a person, never into a mail loop.

Two steps. Intake's transaction queues the acknowledgement (``queue_ack``) with the built-in
text and holds it; after the commit, ``finish_acks`` renders the desk's template outside any
transaction (time and output limits; a failure means the built-in text, and the reason is
logged and recorded) and releases the row in a short transaction of its own. A process that
dies between the two leaves a held row, which the runner finishes when it starts and on its
timer: one acknowledgement per ticket, never held up by a template, never holding up intake.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from supportdesk.channels.base import InboundMessage
from supportdesk.channels.registry import configured_class
from supportdesk.desk import audit as events
from supportdesk.desk.desk import BadInput, Desk
from supportdesk.desk.identity import normalize_address
from supportdesk.search import index as search_index
from supportdesk.sla import clocks as sla
from supportdesk.sla.hours import BusinessHours
from supportdesk.store.models import AckLog, Customer, Message, Outbox, Template, Ticket, utcnow

log = logging.getLogger("supportdesk.inbound.ack")
# the desk's acknowledgement template renders after intake committed, with a tighter limit
# than an agent's reply: it delays the acknowledgement, never intake or another writer
ACK_TIME_LIMIT = 1.0
# a queued acknowledgement waits this long for its template; if the process dies before
# rendering it, the runner renders it at start (or the built-in text goes out after the wait)
ACK_HOLD = timedelta(seconds=60)
PENDING = "ack_pending"  # the outbox payload's entry while the template is still to render
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
    cls = configured_class(desk.config, msg.channel, msg.kind)
    if cls is not None and cls.capabilities.live_chat:
        return False  # the chat itself shows presence and the promised time, live
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


def builtin_text(lang: str, ctx: dict[str, Any]) -> str:
    """The built-in acknowledgement, filled in by plain substitution (no template engine: it
    cannot fail, so it is what goes out when the desk's template does not render)."""
    values = {
        "customer.name": (ctx.get("customer") or {}).get("name") or "",
        "desk.name": (ctx.get("desk") or {}).get("name") or "",
        "ticket.id": (ctx.get("ticket") or {}).get("id") or "",
        "sla.promise": (ctx.get("sla") or {}).get("promise") or "",
    }
    text = DEFAULT_ACK[lang if lang in DEFAULT_ACK else "en"]
    for name, value in values.items():
        text = text.replace("{{ " + name + " }}", str(value))
    return text


def queue_ack(
    session: Session, desk: Desk, ticket: Ticket, address: str, *, now: datetime | None = None
) -> Message | None:
    """Queue the acknowledgement for a new ticket, in the caller's (intake's) transaction.

    It is queued with the built-in text and held (``next_attempt_at`` ACK_HOLD ahead, the
    payload's PENDING entry) until :func:`finish_acks`, after the commit, renders the desk's
    acknowledgement template outside any transaction and releases it. The row and
    ``ticket.ack_sent`` are written here, together: one acknowledgement per ticket, whatever
    happens between the two steps (the runner finishes held rows at start and on its timer).
    """
    from supportdesk.outbound import outbox

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
    cust = session.get(Customer, ticket.customer_id)
    text = builtin_text(lang, {
        "customer": {"name": cust.name if cust else ""}, "desk": {"name": desk.config.desk.name},
        "ticket": {"id": ticket.id}, "sla": {"promise": deadline},
    })  # fmt: skip
    msg = outbox.queue_outbound(session, desk, ticket, text, agent="system", auto=True, at=now)
    row = session.exec(select(Outbox).where(Outbox.message_id == msg.id)).first()
    if row is not None:
        payload = json.loads(row.payload or "{}")
        payload[PENDING] = {"lang": lang, "first_response": promised, "promise": deadline}
        row.payload = json.dumps(payload, ensure_ascii=False)
        row.next_attempt_at = utcnow() + ACK_HOLD
        session.add(row)
    ticket.ack_sent = True
    session.add(ticket)
    session.add(AckLog(address=address.lower()))
    return msg


@dataclass
class _Job:
    outbox_id: int
    lang: str
    ctx: dict[str, Any]
    template: str | None  # name
    body: str | None
    articles: str


def _template(session: Session, desk: Desk, lang: str) -> Template | None:
    name = desk.config.desk.ack_template
    return (
        session.exec(select(Template).where(Template.name == f"{name}-{lang}")).first()
        or session.exec(select(Template).where(Template.name == name)).first()
    )


def _render(job: _Job) -> tuple[str, str]:
    """(text, why the template was not used: "" when it was). No database, no transaction."""
    from supportdesk.replies import templating

    if job.body is not None and job.template is not None:
        key = (job.template, hashlib.sha256(job.body.encode("utf-8", "replace")).hexdigest())
        if key not in _FAILED:
            try:
                text = templating.render(job.body, job.ctx, strict=False, seconds=ACK_TIME_LIMIT)
                return text + job.articles, ""
            except BadInput as exc:
                # a broken or hostile template never stops an acknowledgement: the built-in
                # text goes out, and this version of the template is not tried again here
                _FAILED.add(key)
                log.warning(
                    "acknowledgement template %r failed (%s); sent the built-in text",
                    job.template, exc,
                )  # fmt: skip
                return builtin_text(job.lang, job.ctx) + job.articles, str(exc)
        return builtin_text(job.lang, job.ctx) + job.articles, "it failed before"
    return builtin_text(job.lang, job.ctx) + job.articles, ""


def finish_acks(
    desk: Desk,
    message_ids: Sequence[int] | None = None,
    *,
    older_than: timedelta | None = None,
) -> int:
    """Render the acknowledgement of held acks and release them to the outbox; returns how
    many were released. ``message_ids``: those acks (intake's, right after its commit);
    None: every held one (``older_than``: held at least that long; the runner's recovery).

    The template renders outside any transaction (with ACK_TIME_LIMIT and the output limit):
    a slow one delays this acknowledgement only, never another writer. Each row is released
    once, in a short transaction, and only while it is still held and queued.
    """
    from supportdesk.replies import templating

    if message_ids is not None and not message_ids:
        return 0
    jobs: list[_Job] = []
    with desk.db.read() as s:
        q = select(Outbox).where(
            Outbox.state == "queued", col(Outbox.payload).contains(f'"{PENDING}"')
        )
        if message_ids is not None:
            q = q.where(col(Outbox.message_id).in_(list(message_ids)))
        if older_than is not None:
            q = q.where(col(Outbox.created_at) <= utcnow() - older_than)
        for row in s.exec(q.order_by(col(Outbox.id))).all():
            held = json.loads(row.payload or "{}").get(PENDING)
            ticket = s.get(Ticket, row.ticket_id) if row.ticket_id else None
            if not isinstance(held, dict) or ticket is None or row.id is None:
                continue
            lang = str(held.get("lang", "en"))
            lang = lang if lang in DEFAULT_ACK else "en"
            extra = {"sla": {"first_response": str(held.get("first_response", "")),
                             "promise": str(held.get("promise", ""))}}  # fmt: skip
            ctx = templating.merge_context(templating.context_for(s, desk, ticket), extra)
            tpl = _template(s, desk, lang)
            articles = ""
            if tpl is None or "kb" not in tpl.body:
                first = s.exec(
                    select(Message)
                    .where(Message.ticket_id == ticket.id, Message.direction == "in")
                    .order_by(col(Message.id))
                    .limit(1)
                ).first()
                articles = _articles_block(s, desk, ticket, first, lang, utcnow())
            jobs.append(_Job(row.id, lang, ctx, tpl.name if tpl else None,
                             tpl.body if tpl else None, articles))  # fmt: skip
    if not jobs:
        return 0
    # no transaction is open from here until the short one that releases the rows
    done = [(job, *_render(job)) for job in jobs]
    released = 0
    with desk.db.write() as s:
        for job, text, why in done:
            out = s.get(Outbox, job.outbox_id)
            if out is None or out.state != "queued":
                continue  # cancelled, or already sent with the built-in text
            payload = json.loads(out.payload or "{}")
            if PENDING not in payload:
                continue  # released by another process meanwhile
            del payload[PENDING]
            out.payload = json.dumps(payload, ensure_ascii=False)
            out.next_attempt_at = utcnow()
            s.add(out)
            msg = s.get(Message, out.message_id) if out.message_id else None
            if msg is not None and text and msg.text != text:
                msg.text = text
                s.add(msg)
                search_index.reindex_message(s, msg.id or 0)
            if why:
                events.record(
                    s, "ack_template_failed", agent="system", ticket_id=out.ticket_id,
                    message_id=out.message_id, template=job.template, reason=why,
                )  # fmt: skip
            released += 1
    return released


def finish_held(desk: Desk, *, older_than: timedelta | None = None) -> None:
    """The runner's recovery: finish the acknowledgements a process that stopped left held
    (see finish_acks); a failure is logged, never raised (it is tried again later)."""
    try:
        finish_acks(desk, older_than=older_than)
    except Exception as exc:
        log.warning("held acknowledgements not finished yet: %s", exc)


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
