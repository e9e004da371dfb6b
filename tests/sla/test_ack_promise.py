"""The acknowledgement promises the real deadline in business hours, in the customer's
language; business hours per channel fall back to the desk's."""

from __future__ import annotations

from typing import Any

from supportdesk.inbound.ack import queue_ack
from supportdesk.store.models import Ticket
from tests.conftest import write_config
from tests.factories import inbound_email, inbound_telegram, ingest
from tests.sla.conftest import BUSINESS_CONFIG, msk


def _ack(desk: Any, msg: Any, now: Any) -> tuple[Ticket, str]:
    r = ingest(desk, msg, now=now)
    with desk.db.write() as s:
        t = s.get(Ticket, r.ticket_id)
        assert t is not None
        m = queue_ack(s, desk, t, msg.sender_address, now=now)
        assert m is not None
        return t, m.text


def test_saturday_evening_mail_is_promised_monday_0915_in_russian(bdesk: Any) -> None:
    sat = msk(21, 20)  # Saturday 21 November 2026, 20:00 Moscow
    t, text = _ack(bdesk, inbound_email(subject="Срочно: не работает оплата",
                                        text="Срочно помогите, не проходит оплата картой",
                                        sent_at=sat), sat)  # fmt: skip
    assert t.priority == "urgent" and t.first_response_due_at == msk(23, 9, 15)
    assert "ответим в понедельник до 09:15" in text
    assert "в течение" not in text


def test_english_customer_gets_the_english_deadline(bdesk: Any) -> None:
    sat = msk(21, 20)
    _t, text = _ack(bdesk, inbound_email(subject="Urgent: payment fails",
                                         text="Urgent, the card payment does not go through",
                                         sent_at=sat), sat)  # fmt: skip
    assert "We will answer by Monday 09:15" in text
    assert "within" not in text


def test_during_business_hours_the_target_is_promised(bdesk: Any) -> None:
    tue = msk(17, 11)
    _t, text = _ack(bdesk, inbound_email(subject="Urgent: payment fails",
                                         text="Urgent, the card payment fails", sent_at=tue),
                    tue)  # fmt: skip
    assert "We will answer within 15 min" in text


def test_a_channel_open_around_the_clock(home: Any) -> None:
    from supportdesk.desk.desk import open_desk

    cfg = BUSINESS_CONFIG.replace(
        'token_env = "TEST_TG_TOKEN"\n',
        'token_env = "TEST_TG_TOKEN"\n  [channel.hours]\n  always = true\n',
    )
    write_config(home, cfg)
    desk = open_desk(home, agent="alice")
    try:
        sat = msk(21, 20)
        t, text = _ack(desk, inbound_telegram(text="Бот не отвечает", sent_at=sat), sat)
        assert t.first_response_due_at == msk(21, 20, 5)  # messenger: five minutes, any day
        assert "ответим в течение 5 мин" in text
        # e-mail on the same desk keeps the desk's working days
        e, _text = _ack(desk, inbound_email(text="Принтер не печатает", sent_at=sat), sat)
        assert e.first_response_due_at == msk(23, 10)
    finally:
        desk.close()
