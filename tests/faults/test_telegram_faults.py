"""Telegram flood limits (429 with retry_after) and server errors (5xx) on getUpdates and
sendMessage, through the runner: nothing lost, nothing twice, the error visible meanwhile."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from supportdesk.desk.desk import open_desk
from supportdesk.outbound.outbox import queue_outbound
from supportdesk.store.models import Message, Ticket
from tests.runner.helpers import setup_telegram_home
from tests.runner.proc import start_runner, stop, wait_until

pytestmark = [pytest.mark.fault, pytest.mark.peers]


def _inbound_keys(desk: Any) -> list[str]:
    with desk.db.read() as s:
        return list(s.exec(select(Message.dedupe_key).where(Message.direction == "in")).all())


def test_get_updates_429_and_5xx_under_run(
    home: Path, botapi: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_telegram_home(home, botapi, monkeypatch)
    desk = open_desk(home)
    # the first long poll passes, then a flood limit, then two server errors in a row
    botapi.fail_next("getUpdates", 429, retry_after=1, after=1)
    botapi.fail_next("getUpdates", 502)
    botapi.fail_next("getUpdates", 500)
    total, chats = 24, 8
    pushed: list[str] = []

    def pusher() -> None:
        for i in range(total):
            chat = 9100 + i % chats
            upd = botapi.push_message(chat, f"вопрос {i}", user={"id": chat, "first_name": "Ю"})
            pushed.append(f"tg:{chat}:{upd['message']['message_id']}")
            time.sleep(0.05)

    proc = start_runner(home)
    try:
        botapi.wait_polling(timeout=60)
        t = threading.Thread(target=pusher)
        t.start()
        t.join()
        wait_until(lambda: len(_inbound_keys(desk)) >= total, 30, "every message stored")
        wait_until(lambda: not botapi.pending, 15, "every update confirmed")
        botapi.wait_sent(chats, timeout=60)  # one acknowledgement per new ticket
    finally:
        stop(proc)
    keys = _inbound_keys(desk)
    lost = set(pushed) - set(keys)
    duplicated = len(keys) - len(set(keys))
    assert not lost and duplicated == 0 and len(keys) == total
    # the faults really happened: three failed long polls, and the runner carried on
    assert len(botapi.calls("getUpdates")) >= 5
    with desk.db.read() as s:
        assert len(s.exec(select(Ticket)).all()) == chats
    acks = [m for m in botapi.sent if m.method == "sendMessage"]
    assert sorted(int(m.chat_id) for m in acks) == list(range(9100, 9100 + chats))
    assert proc.returncode == 0
    desk.close()


def _poll(cli: Callable[..., Any]) -> tuple[int, dict[str, Any]]:
    res = cli("poll", "--once", "--json")
    assert "Traceback" not in res.output
    return res.exit_code, json.loads(res.stdout)


def test_get_updates_error_in_poll_is_reported_and_nothing_lost(
    home: Path, botapi: Any, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Any]
) -> None:
    setup_telegram_home(home, botapi, monkeypatch)
    for i in range(3):
        botapi.push_message(300 + i, f"помогите {i}", user={"id": 300 + i, "first_name": "A"})
    botapi.fail_next("getUpdates", 502)
    code, rep = _poll(cli)
    assert code == 1
    [ch] = rep["channels"]
    assert ch["fetched"] == 0 and ("502" in ch["error"] or "Bad Gateway" in ch["error"])
    status = json.loads(cli("status", "--json").stdout)
    assert status["channels"][0]["state"] == "error" and status["channels"][0]["last_error"]
    assert botapi.token not in json.dumps(status)
    assert len(botapi.pending) == 3  # unconfirmed: still waiting on the server
    botapi.fail_next("getUpdates", 429, retry_after=1)
    code, rep = _poll(cli)
    assert code == 1 and "1 s" in rep["channels"][0]["error"]
    code, rep = _poll(cli)
    assert code == 0 and rep["channels"][0]["fetched"] == 3
    assert not botapi.pending
    code, rep = _poll(cli)
    assert rep["channels"][0]["fetched"] == 0
    listing = json.loads(cli("tickets", "list", "--json").stdout)
    assert sorted(t["subject"] for t in listing) == [f"помогите {i}" for i in range(3)]


def test_send_message_429_and_5xx_retried_and_sent_once(
    home: Path, botapi: Any, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Any]
) -> None:
    setup_telegram_home(home, botapi, monkeypatch)
    chats = [501, 502, 503]
    for c in chats:
        botapi.push_message(c, "здравствуйте", user={"id": c, "first_name": "B"})
    _poll(cli)
    botapi.wait_sent(len(chats))  # the acknowledgements
    desk = open_desk(home, agent="alice")
    with desk.db.write() as s:
        for t in s.exec(select(Ticket).order_by(Ticket.id)).all():  # type: ignore[arg-type]
            queue_outbound(s, desk, t, f"Ответ для {t.reply_to_address}", agent="alice")
    desk.close()
    botapi.fail_next("sendMessage", 429, retry_after=1)
    botapi.fail_next("sendMessage", 500)
    botapi.fail_next("sendMessage", 502)
    _code, rep = _poll(cli)
    assert rep["outbox"] == {"sent": 0, "failed": 0, "retrying": 3}
    rows = [r for r in json.loads(cli("outbox", "list", "--json").stdout) if r["ticket_id"]]
    replies = [r for r in rows if r["state"] != "sent"]
    assert len(replies) == 3
    assert all(r["state"] == "queued" and r["attempts"] == 1 for r in replies)
    errors = " ".join(r["last_error"] for r in replies)
    assert "wait 1 s" in errors  # the flood limit's retry_after is kept
    res = cli("outbox", "retry", *[str(r["id"]) for r in replies])
    assert res.exit_code == 0
    _code, rep = _poll(cli)
    assert rep["outbox"]["sent"] == 3
    _code, rep = _poll(cli)
    assert rep["outbox"] == {"sent": 0, "failed": 0, "retrying": 0}
    texts = [m.text for m in botapi.sent if m.text and m.text.startswith("Ответ для")]
    assert sorted(texts) == sorted(f"Ответ для {c}" for c in chats)  # lost 0, duplicated 0
