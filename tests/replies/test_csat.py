"""CSAT: one survey per solved ticket; e-mail digit replies and Telegram buttons."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlmodel import select

from supportdesk.channels.base import InboundMessage
from supportdesk.desk.desk import BadInput, Conflict, NotFound
from supportdesk.replies import csat
from supportdesk.store.models import Customer, Event, Message, Outbox, Ticket
from tests.factories import inbound_email, inbound_telegram, ingest
from tests.sla.conftest import msk
from tests.sla.helpers import set_status, ticket


def _outbox_for(desk: Any, message_id: int) -> Outbox:
    with desk.db.read() as s:
        row = s.exec(select(Outbox).where(Outbox.message_id == message_id)).one()
    return row


def _callback(chat_id: int, data: str, query_id: str = "4000000000001") -> InboundMessage:
    return InboundMessage(
        kind="telegram",
        external_id=f"tg:{chat_id}:callback:{query_id}",
        sender_address=str(chat_id),
        sender_name="Иван Петров",
        sent_at=msk(18, 12, 20),
        channel="telegram",
        extra={"chat_id": chat_id, "callback_data": data, "callback_query_id": query_id},
    )


def test_email_survey_and_digit_reply(bdesk: Any) -> None:
    r = ingest(bdesk, inbound_email(sent_at=msk(16, 10)), historical=True)
    survey = set_status(bdesk, r.ticket_id, "solved", msk(16, 15))
    assert survey is not None and survey.is_auto
    assert "digit from 1" in survey.text
    row = _outbox_for(bdesk, survey.id)
    assert row.to_address == "ivan@example.ru" and row.state == "queued"
    assert json.loads(row.payload)["auto"] is True
    t = ticket(bdesk, r.ticket_id)
    assert t.csat_requested_at == msk(16, 15)
    assert t.first_response_at is None  # a survey is not a response

    reply = inbound_email(text="5 - quick and friendly, thanks!", sent_at=msk(16, 16),
                          subject=survey.subject, in_reply_to=[survey.message_id])  # fmt: skip
    res = ingest(bdesk, reply, historical=True)
    assert res.ticket_id == r.ticket_id and res.outcome == "joined"
    t = ticket(bdesk, r.ticket_id)
    assert (t.csat_score, t.csat_comment) == (5, "quick and friendly, thanks!")
    assert t.status == "solved"  # a rating does not reopen the ticket
    with bdesk.db.read() as s:
        ev = s.exec(select(Event).where(Event.kind == "csat_rated")).one()
        assert json.loads(ev.data)["via"] == "email" and ev.created_at == msk(16, 16)
        # the reply itself stays in the thread
        assert (
            s.exec(select(Message).where(Message.id == res.message_id)).one().text.startswith("5")
        )
        # one survey per ticket, even when solved again
        t2 = s.get(Ticket, r.ticket_id)
        assert t2 is not None
        assert not csat.survey_allowed(s, t2)


def test_a_reply_without_a_rating_reopens(bdesk: Any) -> None:
    r = ingest(bdesk, inbound_email(sent_at=msk(16, 10)), historical=True)
    survey = set_status(bdesk, r.ticket_id, "solved", msk(16, 15))
    assert survey is not None
    again = inbound_email(text="10 pages jammed again", sent_at=msk(17, 10),
                          in_reply_to=[survey.message_id])  # fmt: skip
    ingest(bdesk, again, historical=True)
    t = ticket(bdesk, r.ticket_id)
    assert t.status == "open" and t.csat_score is None


def test_no_survey_for_opted_out_customers(bdesk: Any) -> None:
    r = ingest(bdesk, inbound_email(sent_at=msk(16, 10)), historical=True)
    with bdesk.db.write() as s:
        c = s.get(Customer, r.customer_id)
        assert c is not None
        c.csat_opt_out = True
        s.add(c)
    assert set_status(bdesk, r.ticket_id, "solved", msk(16, 15)) is None
    assert ticket(bdesk, r.ticket_id).csat_requested_at is None


def test_telegram_survey_button_round_trip(bdesk: Any) -> None:
    r = ingest(bdesk, inbound_telegram(chat_id=1001, sent_at=msk(18, 12)), historical=True)
    survey = set_status(bdesk, r.ticket_id, "solved", msk(18, 12, 10), agent="bob")
    assert survey is not None
    assert "решена" in survey.text  # the customer wrote in Russian
    payload = json.loads(_outbox_for(bdesk, survey.id).payload)
    assert payload["buttons"] == [
        [{"text": str(n), "callback_data": f"csat:{r.ticket_id}:{n}"} for n in range(1, 6)]
    ]
    press = _callback(1001, f"csat:{r.ticket_id}:4")
    with bdesk.db.write() as s:
        assert csat.handle_inbound_callback(s, bdesk, press)
    assert press.extra["callback_answer"] == "Спасибо за оценку: 4 из 5."
    t = ticket(bdesk, r.ticket_id)
    assert t.csat_score == 4 and t.status == "solved"
    # a mis-tap corrected: the later press wins, and is audited
    with bdesk.db.write() as s:
        assert csat.handle_inbound_callback(s, bdesk, _callback(1001, f"csat:{r.ticket_id}:5", "2"))
    assert ticket(bdesk, r.ticket_id).csat_score == 5
    with bdesk.db.read() as s:
        rated = s.exec(select(Event).where(Event.kind == "csat_rated").order_by(Event.id)).all()
    assert [json.loads(e.data)["score"] for e in rated] == [4, 5]
    assert json.loads(rated[1].data)["before"] == 4


def test_callbacks_that_are_not_for_this_chat_change_nothing(bdesk: Any) -> None:
    r = ingest(bdesk, inbound_telegram(chat_id=1001, sent_at=msk(18, 12)), historical=True)
    set_status(bdesk, r.ticket_id, "solved", msk(18, 12, 10))
    with bdesk.db.write() as s:
        # another chat pressing a forged button
        assert csat.handle_inbound_callback(s, bdesk, _callback(2002, f"csat:{r.ticket_id}:1"))
        assert (
            csat.handle_callback(s, bdesk, "csat:999:3", 1001)
            == "This survey is no longer available."
        )
        assert csat.handle_callback(s, bdesk, "csat:x:9", 1001) is not None
        assert not csat.handle_inbound_callback(s, bdesk, _callback(1001, "menu:help"))
    assert ticket(bdesk, r.ticket_id).csat_score is None


def test_telegram_digit_message_rates_too(bdesk: Any) -> None:
    r = ingest(bdesk, inbound_telegram(chat_id=1001, sent_at=msk(18, 12)), historical=True)
    set_status(bdesk, r.ticket_id, "solved", msk(18, 12, 10))
    ingest(bdesk, inbound_telegram(chat_id=1001, text="3", sent_at=msk(18, 13)), historical=True)
    t = ticket(bdesk, r.ticket_id)
    assert (t.csat_score, t.status) == (3, "solved")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5", (5, None)),
        ("  4!", (4, None)),
        ("5/5 great", (5, "great")),
        ("1 — nobody answered", (1, "nobody answered")),
        ("3\nok I guess", (3, "ok I guess")),
        ("10", None),
        ("3.5", None),
        ("0", None),
        ("6", None),
        ("thanks 5", None),
        ("", None),
    ],
)
def test_parse_rating(text: str, expected: tuple[int, str | None] | None) -> None:
    assert csat.parse_rating(text) == expected


def test_record_rating_refuses_bad_input(bdesk: Any) -> None:
    r = ingest(bdesk, inbound_email(sent_at=msk(16, 10)), historical=True)
    with bdesk.db.write() as s:
        with pytest.raises(Conflict, match="no satisfaction survey"):
            csat.record_rating(s, bdesk, r.ticket_id or 0, 5)
        with pytest.raises(NotFound, match="does not exist"):
            csat.record_rating(s, bdesk, 9999, 5)
        with pytest.raises(BadInput, match="from 1 to 5"):
            csat.record_rating(s, bdesk, r.ticket_id or 0, 7)
