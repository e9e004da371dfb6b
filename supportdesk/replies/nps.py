"""Net Promoter Score: "how likely are you to recommend us?", 0 to 10, per customer.

Unlike CSAT (one survey per solved ticket), the NPS survey goes to a customer on a schedule:
at most once every ``[nps] every`` (e.g. "90d"), ``after`` (default "1d") once a ticket of
theirs was solved, on that ticket's channel. Nothing is sent when ``every`` is not set.

* E-mail: a reply whose text starts with a number from 0 to 10 is the score, the rest the
  comment (``maybe_score_reply``, called by ingest); it does not reopen the ticket.
* Telegram: buttons ``nps:<customer>:<score>`` (``handle_callback``).

Customers with ``csat_opt_out`` get no survey. Events: ``nps_requested`` (customer, ticket,
message) and ``nps_rated`` (customer, ticket, score, comment, via). NPS = % promoters (9-10)
minus % detractors (0-6) of the latest score per customer.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

from sqlmodel import Session, col, select

from supportdesk.core.config import parse_duration
from supportdesk.desk import audit as events
from supportdesk.desk.desk import Desk
from supportdesk.desk.identity import resolve_customer
from supportdesk.replies.nps_figures import summary as summary  # moved: the quick path
from supportdesk.replies.survey import survey_way
from supportdesk.store.models import Event, Message, Ticket, utcnow

CALLBACK_PREFIX = "nps:"
_CALLBACK = re.compile(r"nps:(\d{1,12}):(\d{1,2})")
_SCORE = re.compile(r"\s*(10|[0-9])(?![\d]|[.,]\d)\s*(?:/\s*10\b)?[\s.,:;!)\-–—]*(.*)", re.DOTALL)
MAX_COMMENT = 2000
MAX_PER_PASS = 200

TEXTS = {
    "en": {
        "mail": (
            "Hello {name},\n\nhow likely are you to recommend {desk} to a friend or colleague?"
            "\n\nReply to this message with a number from 0 (not at all likely) to 10 "
            "(extremely likely). Anything you write after the number reaches us as a comment."
            "\n\nThank you!"
        ),
        "chat": "How likely are you to recommend {desk} to a friend or colleague? "
        "0 = not at all, 10 = extremely likely.",
        "thanks": "Thank you: {score} of 10.",
        "unknown": "This survey is no longer available.",
    },
    "ru": {
        "mail": (
            "Здравствуйте, {name}!\n\nНасколько вероятно, что вы порекомендуете {desk} другу "
            "или коллеге?\n\nОтветьте на это письмо числом от 0 (точно нет) до 10 (точно да). "
            "Всё, что вы напишете после числа, мы получим как комментарий.\n\nСпасибо!"
        ),
        "chat": "Насколько вероятно, что вы порекомендуете {desk} другу или коллеге? "
        "0 — точно нет, 10 — точно да.",
        "thanks": "Спасибо: {score} из 10.",
        "unknown": "Этот опрос больше не доступен.",
    },
}


def _data(ev: Event) -> dict[str, object]:
    try:
        d = json.loads(ev.data or "{}")
    except ValueError:
        return {}
    return d if isinstance(d, dict) else {}


def send_due(session: Session, desk: Desk, now: datetime | None = None) -> list[int]:
    """Queue the NPS survey for every customer it is due to; returns their ids.

    The runner calls it with its timers, in a write transaction.
    """
    nps = desk.config.nps
    if not nps.every:
        return []
    from supportdesk.outbound.outbox import queue_outbound
    from supportdesk.replies.language import customer_language

    now = now or utcnow()
    every, after = parse_duration(nps.every), parse_duration(nps.after)
    asked = {
        cid
        for cid in session.exec(
            select(Event.customer_id).where(
                Event.kind == "nps_requested", col(Event.created_at) > now - every
            )
        ).all()
        if cid is not None
    }
    solved = session.exec(
        select(Ticket)
        .where(col(Ticket.status).in_(("solved", "closed")), col(Ticket.spam).is_(False))
        .where(col(Ticket.solved_at) <= now - after, col(Ticket.solved_at) > now - every)
        .order_by(col(Ticket.solved_at).desc())
    ).all()
    out: list[int] = []
    for t in solved:
        if len(out) >= MAX_PER_PASS:
            break
        way = survey_way(t)
        if way is None:
            continue
        if t.reply_to_address.startswith("merged:"):
            continue
        customer = resolve_customer(session, t.customer_id)
        cid = customer.id or 0
        if cid in asked or customer.csat_opt_out:
            continue
        asked.add(cid)  # the latest solved ticket only, even when this one is not allowed
        lang = customer_language(session, t, customer)
        texts = TEXTS[lang]
        buttons: list[list[dict[str, str]]] | None = None
        if way == "chat":
            text = texts["chat"].format(desk=desk.config.desk.name)
            row = [
                {"text": str(n), "callback_data": f"{CALLBACK_PREFIX}{cid}:{n}"} for n in range(11)
            ]
            buttons = [row[:6], row[6:]]
        else:
            name = customer.name or ("клиент" if lang == "ru" else "there")
            text = texts["mail"].format(name=name, desk=desk.config.desk.name)
        msg = queue_outbound(
            session, desk, t, text, agent="system", auto=True, buttons=buttons, at=now
        )
        events.record(
            session, "nps_requested", agent="system", ticket_id=t.id, customer_id=cid,
            message_id=msg.id, at=now, channel=t.channel,
        )  # fmt: skip
        out.append(cid)
    return out


def parse_score(text: str) -> tuple[int, str | None] | None:
    """``"9"``, ``"10 - great"``, ``"7/10"`` -> (score, comment); None when not a score."""
    m = _SCORE.fullmatch(text or "")
    if not m:
        return None
    return int(m.group(1)), (m.group(2).strip()[:MAX_COMMENT] or None)


def _pending_request(session: Session, ticket_id: int) -> Event | None:
    """The ticket's last NPS request when no score answered it yet."""
    evs = session.exec(
        select(Event)
        .where(Event.ticket_id == ticket_id, col(Event.kind).in_(("nps_requested", "nps_rated")))
        .order_by(col(Event.created_at).desc(), col(Event.id).desc())
    ).first()
    return evs if evs is not None and evs.kind == "nps_requested" else None


def record_score(
    session: Session,
    desk: Desk,
    customer_id: int,
    score: int,
    comment: str | None = None,
    *,
    ticket_id: int | None = None,
    via: str = "email",
    at: datetime | None = None,
) -> None:
    events.record(
        session, "nps_rated", agent="system", ticket_id=ticket_id, customer_id=customer_id,
        at=at or utcnow(), score=score, comment=comment, via=via,
    )  # fmt: skip


def maybe_score_reply(
    session: Session, desk: Desk, ticket: Ticket, text: str, *, at: datetime | None = None
) -> bool:
    """If ``text`` answers the NPS survey sent on this ticket, record the score; True if so."""
    if ticket.id is None:
        return False
    req = _pending_request(session, ticket.id)
    if req is None:
        return False
    parsed = parse_score(text)
    if parsed is None:
        return False
    score, comment = parsed
    cid = req.customer_id or resolve_customer(session, ticket.customer_id).id or 0
    record_score(session, desk, cid, score, comment, ticket_id=ticket.id, via=ticket.kind, at=at)
    return True


def handle_callback(
    session: Session,
    desk: Desk,
    callback_data: str,
    chat_id: int | str,
    *,
    at: datetime | None = None,
) -> str | None:
    """A Telegram button press ``nps:<customer>:<score>``; the answer text, or None if not ours."""
    if not str(callback_data or "").startswith(CALLBACK_PREFIX):
        return None
    m = _CALLBACK.fullmatch(str(callback_data))
    if m is None or int(m.group(2)) > 10:
        return TEXTS["en"]["unknown"]
    cid, score = int(m.group(1)), int(m.group(2))
    req = session.exec(
        select(Event)
        .where(Event.kind == "nps_requested", Event.customer_id == cid)
        .order_by(col(Event.created_at).desc(), col(Event.id).desc())
    ).first()
    ticket = session.get(Ticket, req.ticket_id) if req is not None and req.ticket_id else None
    if ticket is None or survey_way(ticket) != "chat" or ticket.reply_to_address != str(chat_id):
        return TEXTS["en"]["unknown"]
    first = session.exec(
        select(Message.text).where(Message.ticket_id == ticket.id).limit(1)
    ).first()
    ru = any("\u0400" <= c <= "\u04ff" for c in (first or "") + ticket.subject)
    record_score(session, desk, cid, score, ticket_id=ticket.id, via=ticket.kind, at=at)
    return TEXTS["ru" if ru else "en"]["thanks"].format(score=score)
