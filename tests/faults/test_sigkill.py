"""SIGKILL the runner at random moments while messages arrive: nothing lost, nothing twice."""

from __future__ import annotations

import random
import signal
import threading
import time
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, func, select

from supportdesk.desk.desk import open_desk
from supportdesk.inbound.ingest import ingest
from supportdesk.outbound.outbox import queue_outbound
from supportdesk.store.models import Message, Outbox, Ticket
from tests.factories import inbound_email, raw_email
from tests.runner.helpers import setup_email_home, setup_telegram_home
from tests.runner.proc import start_runner, stop, wait_until

pytestmark = [pytest.mark.fault, pytest.mark.peers]

KILLS = 5


def _kill_repeatedly(home: Path, rnd: random.Random, done: threading.Event | None = None) -> int:
    kills = 0
    for _ in range(KILLS):
        proc = start_runner(home)
        time.sleep(rnd.uniform(0.3, 1.5))  # a random moment: this is the fault being injected
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    return kills


def _inbound(desk: Any) -> list[str]:
    with desk.db.read() as s:
        return list(s.exec(select(Message.dedupe_key).where(Message.direction == "in")).all())


def test_telegram_kill_loses_and_duplicates_nothing(
    home: Path, botapi: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_telegram_home(home, botapi, monkeypatch)
    desk = open_desk(home)
    rnd = random.Random(20261125)
    total = 60
    pushed: list[str] = []

    def pusher() -> None:
        for i in range(total):
            chat = 7000 + i % 15
            upd = botapi.push_message(
                chat, f"сообщение {i}", user={"id": chat, "first_name": f"U{chat}"}
            )
            pushed.append(f"tg:{chat}:{upd['message']['message_id']}")
            time.sleep(0.08)

    t = threading.Thread(target=pusher)
    t.start()
    kills = _kill_repeatedly(home, rnd)
    t.join()
    proc = start_runner(home)
    try:
        wait_until(lambda: len(_inbound(desk)) >= total, 30, "all Telegram messages stored")
        wait_until(lambda: not botapi.pending, 15, "every update confirmed")
    finally:
        stop(proc)
    keys = _inbound(desk)
    lost = set(pushed) - set(keys)
    dup = len(keys) - len(set(keys))
    print(f"telegram: {kills} kills, {total} messages, lost {len(lost)}, duplicated {dup}")
    assert not lost and dup == 0 and len(keys) == total
    with desk.db.read() as s:
        assert s.exec(select(func.count()).select_from(Ticket)).one() == 15


def test_imap_kill_during_ingest(
    home: Path, imap_account: Any, smtp_sink: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_email_home(home, imap_account, smtp_sink, monkeypatch)
    desk = open_desk(home)
    rnd = random.Random(7)
    total = 400
    ids = [f"k{i}@example.ru" for i in range(total)]
    imap_account.append_many(
        "INBOX",
        [
            raw_email(
                msgid=m, frm=f"c{i % 40}@example.ru", subject=f"тема {i}", body="текст " * 200
            )
            for i, m in enumerate(ids)
        ],
    )
    kills = _kill_repeatedly(home, rnd)
    proc = start_runner(home)
    try:
        wait_until(lambda: len(_inbound(desk)) >= total, 60, "all IMAP messages stored")
    finally:
        stop(proc)
    keys = _inbound(desk)
    lost = set(ids) - set(keys)
    print(
        f"imap: {kills} kills, {total} messages, lost {len(lost)}, duplicated {len(keys) - len(set(keys))}"
    )
    assert not lost and len(keys) == total == len(set(keys))


def test_smtp_kill_during_outbox_sending(
    home: Path, imap_account: Any, smtp_sink: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_email_home(home, imap_account, smtp_sink, monkeypatch)
    desk = open_desk(home)
    total = 150
    with desk.db.write() as s:
        for i in range(total):
            r = ingest(
                s,
                desk,
                inbound_email(external_id=f"o{i}@example.ru", sender_address=f"c{i}@example.ru"),
                historical=True,
            )
            queue_outbound(s, desk, s.get(Ticket, r.ticket_id), f"Ответ {i}", agent="alice")
    _kill_repeatedly(home, random.Random(11))
    proc = start_runner(home)

    def all_sent() -> bool:
        with desk.db.read() as s:
            return (
                s.exec(
                    select(func.count()).select_from(Outbox).where(col(Outbox.state) != "sent")
                ).one()
                == 0
            )

    try:
        wait_until(all_sent, 60, "the whole outbox sent")
    finally:
        stop(proc)
    got = [message_from_bytes(m.raw)["Message-ID"] for m in smtp_sink.received]
    distinct = set(got)
    print(f"smtp: {total} replies, {len(got)} deliveries, {len(distinct)} distinct Message-IDs")
    assert len(distinct) == total  # none lost; a resend after a kill reuses its Message-ID
    assert len(got) - len(distinct) <= KILLS  # at most one re-delivery per kill, deduplicated by id
