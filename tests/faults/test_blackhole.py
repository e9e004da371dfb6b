"""A hung mail server (accepts TCP, never answers) for 60 s while chat replies are queued:
each channel delivers on its own worker, so Telegram replies go out as fast as before."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from supportdesk.desk.desk import open_desk
from supportdesk.outbound.outbox import queue_outbound
from supportdesk.store.models import Outbox, Ticket
from tests.conftest import write_config
from tests.factories import inbound_email, inbound_telegram, ingest
from tests.faults.test_freeze import Proc, holder_pid, two_channel_config
from tests.runner.proc import stop, wait_until

pytestmark = [pytest.mark.fault, pytest.mark.peers]

BLACKHOLE_SECONDS = 60


def _chat_reply(desk: Any, bot: Any, n: int) -> float:
    """Queue a reply to a new chat; seconds until the Bot API stand-in has it."""
    chat = 9900 + n
    bot.add_chat(chat)
    r = ingest(desk, inbound_telegram(chat_id=chat, text=f"q{n}"), historical=True)
    text = f"chat reply {n}"
    t0 = time.monotonic()
    with desk.db.write() as s:
        queue_outbound(s, desk, s.get(Ticket, r.ticket_id), text, agent="alice")
    wait_until(lambda: any(m.text == text for m in bot.sent), 30, f"{text!r} to arrive")
    return time.monotonic() - t0


def test_a_hung_smtp_server_does_not_delay_telegram(
    home: Path, smtp_sink: Any, botapi: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_TG_TOKEN", botapi.token)
    write_config(home, two_channel_config(smtp_sink, botapi, smtp_timeout=30))
    desk = open_desk(home, agent="alice")
    runner = Proc(home, {})
    try:
        wait_until(lambda: holder_pid(desk) == runner.p.pid, 20, "the runner to become active")
        normal = [_chat_reply(desk, botapi, i) for i in range(4)]
        smtp_sink.blackhole()
        for i in range(10):
            r = ingest(desk, inbound_email(external_id=f"bh{i}@example.ru",
                                           sender_address=f"b{i}@example.ru"), historical=True)  # fmt: skip
            with desk.db.write() as s:
                queue_outbound(s, desk, s.get(Ticket, r.ticket_id), f"mail {i}", agent="alice")

        def mail_stuck() -> bool:
            with desk.db.read() as s:
                rows = s.exec(select(Outbox).where(Outbox.kind == "email")).all()
            return any(r.state == "sending" for r in rows)

        wait_until(mail_stuck, 15, "the e-mail worker to hang on the silent server")
        started = time.monotonic()
        during = []
        n = 100
        while time.monotonic() - started < BLACKHOLE_SECONDS:
            during.append(_chat_reply(desk, botapi, n))
            n += 1
            time.sleep(2)  # pacing between replies over the 60 s, not waiting for anything
        smtp_sink.ok()

        def mail_delivered() -> bool:
            return len(smtp_sink.received) >= 10

        wait_until(mail_delivered, 120, "the e-mails to go out once the server answers")
        stop(runner.p)
    finally:
        stop(runner.p, timeout=15)
    print(f"telegram latency: normal {normal}, during the SMTP blackhole {during}")
    with desk.db.read() as s:
        mail = s.exec(select(Outbox).where(Outbox.kind == "email")).all()
    assert all(r.state == "sent" for r in mail)
    assert (
        len({m.message["Message-ID"] for m in smtp_sink.received}) == 10 == len(smtp_sink.received)
    )
    # within a second of normal (the worker looks for new replies every second), and never an
    # SMTP timeout (10 s to connect, 30 s per answer) in front of a chat reply
    assert statistics.median(during) <= statistics.median(normal) + 1.0
    assert max(during) <= max(normal) + 2.0
    desk.close()
