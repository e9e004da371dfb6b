"""The Telegram channel end to end: the real python-telegram-bot against the Bot API stand-in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from supportdesk.desk.desk import open_desk
from supportdesk.outbound.outbox import queue_outbound
from supportdesk.runner.loop import Runner
from supportdesk.store.models import Identity, Message, Outbox, Ticket
from tests.runner.helpers import setup_telegram_home


@pytest.fixture
def tdesk(home: Path, botapi: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    setup_telegram_home(home, botapi, monkeypatch)
    d = open_desk(home, agent="alice")
    yield d
    d.close()


def test_messages_become_one_ticket_with_ack(tdesk: Any, botapi: Any) -> None:
    botapi.push_message(
        4242, "Здравствуйте, не работает оплата", user={"id": 4242, "first_name": "Иван"}
    )
    botapi.push_message(4242, "Карта Visa", user={"id": 4242, "first_name": "Иван"})
    rep = Runner(tdesk).run_once()
    assert rep.ok and rep.channels[0].fetched == 2 and rep.channels[0].new_tickets == 1
    with tdesk.db.read() as s:
        t = s.exec(select(Ticket)).one()
        assert (
            t.kind == "telegram" and t.message_count >= 2 and t.subject.startswith("Здравствуйте")
        )
        ident = s.exec(select(Identity)).one()
        assert ident.kind == "telegram" and ident.address == "4242"
    sent = botapi.wait_sent(1)
    assert (
        sent[0].chat_id in (4242, "4242") and f"#{t.id}" in sent[0].text and "5 мин" in sent[0].text
    )
    assert sent[0].parse_mode is None
    # everything was confirmed: a new pass gets nothing again
    rep = Runner(tdesk).run_once()
    assert rep.channels[0].fetched == 0


def test_start_gets_greeting_not_a_ticket(tdesk: Any, botapi: Any) -> None:
    botapi.push_message(77, "/start", user={"id": 77, "first_name": "Anna"})
    Runner(tdesk).run_once()
    with tdesk.db.read() as s:
        assert s.exec(select(Ticket)).all() == []
    sent = botapi.wait_sent(1)
    assert "Acme support" in sent[0].text


def test_reply_is_split_and_sent_verbatim(tdesk: Any, botapi: Any) -> None:
    botapi.push_message(5, "help", user={"id": 5, "first_name": "Bob"})
    Runner(tdesk).run_once()
    botapi.wait_sent(1)
    long = ("*bold* <b>x</b> [link](http://x) " + "слово " * 1200).strip()
    with tdesk.db.write() as s:
        t = s.exec(select(Ticket)).one()
        queue_outbound(s, tdesk, t, long, agent="alice")
    rep = Runner(tdesk).run_once()
    assert rep.outbox_sent == 1
    sent = botapi.wait_sent(3)
    parts = [m.text for m in sent[1:]]
    assert len(parts) == 2 and all(m.parse_mode is None for m in sent)
    assert parts[0].startswith("*bold* <b>x</b> [link](http://x)")
    assert "".join(p if p.endswith(" ") else p + " " for p in parts).split() == long.split()


def test_429_is_retried_and_sent_once(tdesk: Any, botapi: Any) -> None:
    botapi.push_message(6, "hi", user={"id": 6, "first_name": "Eve"})
    botapi.fail_next("sendMessage", code=429, retry_after=1)
    rep = Runner(tdesk).run_once()
    assert rep.outbox_retrying == 1
    with tdesk.db.write() as s:
        ob = s.exec(select(Outbox)).one()
        assert ob.state == "queued" and "wait 1 s" in ob.last_error
        ob.next_attempt_at = None
        s.add(ob)
    rep = Runner(tdesk).run_once()
    assert rep.outbox_sent == 1
    Runner(tdesk).run_once()
    assert len([m for m in botapi.sent if m.method == "sendMessage"]) == 1


def test_edit_updates_text_and_keeps_version(tdesk: Any, botapi: Any) -> None:
    upd = botapi.push_message(9, "первая версия", user={"id": 9, "first_name": "Ольга"})
    Runner(tdesk).run_once()
    mid = upd["message"]["message_id"]
    botapi.push_edit(9, mid, "исправленная версия")
    Runner(tdesk).run_once()
    with tdesk.db.read() as s:
        m = s.exec(select(Message).where(Message.direction == "in")).one()
        assert m.text == "исправленная версия" and "первая версия" in m.versions


def test_csat_button_round_trip(tdesk: Any, botapi: Any) -> None:
    from supportdesk.replies import csat

    botapi.push_message(12, "помогите", user={"id": 12, "first_name": "Вера"})
    Runner(tdesk).run_once()
    botapi.wait_sent(1)
    with tdesk.db.write() as s:
        t = s.exec(select(Ticket)).one()
        t.status = "solved"
        s.add(t)
        csat.request_survey(s, tdesk, t)
    Runner(tdesk).run_once()
    sent = botapi.wait_sent(2)
    survey = sent[-1]
    assert survey.reply_markup and "inline_keyboard" in str(survey.reply_markup)
    data = [b["callback_data"] for row in survey.reply_markup["inline_keyboard"] for b in row]
    five = next(d for d in data if d.endswith(":5"))
    botapi.push_callback(12, five, survey.message_id, user={"id": 12, "first_name": "Вера"})
    Runner(tdesk).run_once()
    with tdesk.db.read() as s:
        t = s.exec(select(Ticket)).one()
        assert t.csat_score == 5
    assert botapi.answered_callbacks


def test_every_update_is_kept_in_the_raw_ledger(tdesk: Any, botapi: Any) -> None:
    import hashlib
    import json

    from supportdesk.store.files import raw_path
    from supportdesk.store.ledger import read_raw

    botapi.push_message(
        9090, "Где мой заказ? <b>срочно</b>", user={"id": 9090, "first_name": "Олег"}
    )
    Runner(tdesk).run_once()
    with tdesk.db.read() as s:
        msg = s.exec(
            select(Message).where(Message.kind == "telegram", Message.direction == "in")
        ).one()
    assert msg.raw_sha256
    data = read_raw(tdesk.home, msg.raw_sha256)
    assert hashlib.sha256(data).hexdigest() == msg.raw_sha256
    assert raw_path(tdesk.home, msg.raw_sha256).exists()  # a file of its own, synced
    update = json.loads(data)
    assert update["message"]["text"] == "Где мой заказ? <b>срочно</b>"
    assert update["message"]["from"]["id"] == 9090
