"""Customer satisfaction: one survey per solved ticket, a rating from 1 to 5.

* E-mail: an automatic message asks the customer to reply with a digit; a reply whose text
  starts with 1-5 is the rating and the rest of its text the comment
  (``maybe_rating_reply``, called by ingest). Such a reply does not reopen the ticket.
* Telegram: the same question with inline buttons ``csat:<ticket>:<score>``; a button press
  arrives as an InboundMessage with ``extra["callback_data"]`` and is handled by
  ``handle_inbound_callback`` instead of ingest.

No survey goes to a customer with ``csat_opt_out``, to spam, or twice for one ticket.
Events: ``csat_requested`` (with the outbox message) and ``csat_rated`` (score, comment, via,
the score before).
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlmodel import Session

from supportdesk.channels.base import InboundMessage
from supportdesk.desk import audit as events
from supportdesk.desk.desk import BadInput, Conflict, Desk, NotFound
from supportdesk.desk.identity import resolve_customer
from supportdesk.replies.language import customer_language
from supportdesk.replies.survey import survey_way
from supportdesk.store.models import Customer, Message, Ticket, utcnow

CALLBACK_PREFIX = "csat:"
_CALLBACK = re.compile(r"csat:(\d{1,12}):([1-5])")
# a digit 1-5 that is not part of a longer number ("10", "3.5", "4,5"), then an optional comment
_RATING = re.compile(r"\s*([1-5])(?![\d]|[.,]\d)\s*(?:/\s*5\b)?[\s.,:;!)\-–—]*(.*)", re.DOTALL)
MAX_COMMENT = 2000

TEXTS = {
    "en": {
        "mail": (
            "Hello {name},\n\nticket #{id} ({subject}) is solved. How did we do?\n\n"
            "Reply to this message with a digit from 1 (bad) to 5 (excellent). Anything you "
            "write after the digit reaches us as a comment.\n\nThank you!"
        ),
        "chat": "Ticket #{id} is solved. How did we do? Rate us from 1 (bad) to 5 (excellent).",
        "thanks": "Thank you for your rating: {score} of 5.",
        "unknown": "This survey is no longer available.",
    },
    "ru": {
        "mail": (
            "Здравствуйте, {name}!\n\nЗаявка #{id} ({subject}) решена. Как мы справились?\n\n"
            "Ответьте на это письмо цифрой от 1 (плохо) до 5 (отлично). Всё, что вы напишете "
            "после цифры, мы получим как комментарий.\n\nСпасибо!"
        ),
        "chat": "Заявка #{id} решена. Как мы справились? Оцените от 1 (плохо) до 5 (отлично).",
        "thanks": "Спасибо за оценку: {score} из 5.",
        "unknown": "Этот опрос больше не доступен.",
    },
}


def survey_allowed(session: Session, ticket: Ticket) -> bool:
    """A survey may go out: never sent, not spam, a channel that can carry it, not opted out."""
    if ticket.csat_requested_at is not None or ticket.spam or ticket.id is None:
        return False
    if survey_way(ticket) is None:
        return False
    from supportdesk.store.merges import merged_into

    if merged_into(ticket) is not None:
        return False
    customer = resolve_customer(session, ticket.customer_id)
    if customer.csat_opt_out:
        return False
    direct = session.get(Customer, ticket.customer_id)
    return not (direct is not None and direct.csat_opt_out)


def request_survey(
    session: Session, desk: Desk, ticket: Ticket, *, now: datetime | None = None
) -> Message | None:
    """Queue the survey for a ticket just solved (in the caller's transaction).

    Returns the queued message, or None when no survey is due (already asked, opted out, spam,
    a phone ticket). Call it from the status change to ``solved``.
    """
    if not survey_allowed(session, ticket):
        return None
    from supportdesk.outbound.outbox import queue_outbound

    now = now or utcnow()
    customer = resolve_customer(session, ticket.customer_id)
    lang = customer_language(session, ticket, customer)
    texts = TEXTS[lang]
    name = customer.name or ("клиент" if lang == "ru" else "there")
    buttons: list[list[dict[str, str]]] | None = None
    if survey_way(ticket) == "chat":
        text = texts["chat"].format(id=ticket.id)
        buttons = [
            [
                {"text": str(n), "callback_data": f"{CALLBACK_PREFIX}{ticket.id}:{n}"}
                for n in range(1, 6)
            ]
        ]
    else:
        text = texts["mail"].format(name=name, id=ticket.id, subject=ticket.subject)
    msg = queue_outbound(
        session, desk, ticket, text, agent="system", auto=True, buttons=buttons, at=now
    )
    ticket.csat_requested_at = now
    session.add(ticket)
    events.record(
        session, "csat_requested", agent="system", ticket_id=ticket.id, message_id=msg.id,
        at=now, channel=ticket.channel,
    )  # fmt: skip
    return msg


def record_rating(
    session: Session,
    desk: Desk,
    ticket_id: int,
    score: int,
    comment: str | None = None,
    *,
    via: str = "agent",
    at: datetime | None = None,
) -> Ticket:
    """Store a rating (1-5) and an optional comment for a ticket whose survey went out.

    A later rating replaces the score (a customer who mis-tapped can tap again); a comment
    replaces the comment only when given. Raises BadInput, NotFound or Conflict.
    """
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise BadInput(f"a rating is a whole number from 1 to 5, not {score!r}")
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"ticket #{ticket_id} does not exist")
    if ticket.csat_requested_at is None:
        raise Conflict(f"ticket #{ticket_id} has no satisfaction survey to answer")
    before = ticket.csat_score
    ticket.csat_score = score
    clean = (comment or "").strip()[:MAX_COMMENT] or None
    if clean is not None:
        ticket.csat_comment = clean
    session.add(ticket)
    events.record(
        session, "csat_rated", agent="system" if via != "agent" else desk.agent,
        ticket_id=ticket.id, at=at or utcnow(), score=score, comment=clean, via=via,
        before=before,
    )  # fmt: skip
    return ticket


def parse_rating(text: str) -> tuple[int, str | None] | None:
    """``"5"``, ``"4 - quick, thanks"``, ``"5/5"`` -> (score, comment); None if no rating."""
    m = _RATING.fullmatch(text or "")
    if not m:
        return None
    comment = m.group(2).strip()
    return int(m.group(1)), (comment or None)


def maybe_rating_reply(
    session: Session, desk: Desk, ticket: Ticket, text: str, *, at: datetime | None = None
) -> bool:
    """If ``text`` answers the ticket's pending survey, record it and return True.

    Ingest calls it for a customer message joining a ticket whose survey went out and has
    no score yet; the message itself is stored as usual.
    """
    if ticket.csat_requested_at is None or ticket.csat_score is not None or ticket.id is None:
        return False
    parsed = parse_rating(text)
    if parsed is None:
        return False
    score, comment = parsed
    record_rating(session, desk, ticket.id, score, comment, via=ticket.kind, at=at)
    return True


def handle_callback(
    session: Session,
    desk: Desk,
    callback_data: str,
    chat_id: int | str,
    *,
    at: datetime | None = None,
) -> str | None:
    """A Telegram button press ``csat:<ticket>:<score>``.

    Returns the short text to show the customer (answerCallbackQuery), or None when the data
    is not a survey answer at all. A press from another chat than the ticket's, or for a
    ticket without a survey, changes nothing and gets a polite answer.
    """
    if not str(callback_data or "").startswith(CALLBACK_PREFIX):
        return None
    m = _CALLBACK.fullmatch(str(callback_data))
    ticket = session.get(Ticket, int(m.group(1))) if m else None
    lang = "en"
    if ticket is not None:
        lang = customer_language(session, ticket, resolve_customer(session, ticket.customer_id))
    if (
        m is None
        or ticket is None
        or survey_way(ticket) != "chat"
        or ticket.reply_to_address != str(chat_id)
        or ticket.csat_requested_at is None
    ):
        return TEXTS[lang]["unknown"]
    score = int(m.group(2))
    if ticket.csat_score != score:
        record_rating(session, desk, ticket.id or 0, score, via=ticket.kind, at=at)
    return TEXTS[lang]["thanks"].format(score=score)


def handle_inbound_callback(session: Session, desk: Desk, msg: InboundMessage) -> bool:
    """The runner's entry for a Telegram button press; True when it was a survey answer.

    On True the text for answerCallbackQuery is left in ``msg.extra["callback_answer"]``;
    on False the callback is not ours and the runner may handle it otherwise.
    """
    data = msg.extra.get("callback_data")
    if not isinstance(data, str):  # only a channel with buttons sends callback data
        return False
    chat_id = msg.extra.get("chat_id", msg.sender_address)
    from supportdesk.replies import nps

    answer = handle_callback(session, desk, data, chat_id, at=msg.sent_at)
    if answer is None:
        answer = nps.handle_callback(session, desk, data, chat_id, at=msg.sent_at)
    if answer is None:
        return False
    msg.extra["callback_answer"] = answer
    return True
