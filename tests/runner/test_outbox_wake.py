"""A reply queued by another process goes out at once, not at the delivery worker's poll
(store/wake.py): on SQLite the runner hears of it through ``PRAGMA data_version``, on
PostgreSQL (SUPPORTDESK_TEST_DB=postgres) through LISTEN on the audit events' NOTIFY.

The runner runs in this process with its poll at a minute; the reply is queued through a desk
opened separately (its own engines and connections, as another process has) or by the CLI in a
process of its own; the peer (the Bot API stand-in, aiosmtpd) must have it within seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supportdesk.desk.desk import Desk, open_desk
from supportdesk.outbound.outbox import queue_outbound
from supportdesk.runner import loop
from supportdesk.runner.loop import Runner
from supportdesk.store.models import Ticket
from supportdesk.store.wake import OutboxWaker
from tests.configs import desk_config, email_channel, telegram_channel
from tests.conftest import TEST_BACKEND, write_config
from tests.factories import inbound_email, inbound_telegram, ingest
from tests.runner.proc import wait_until

pytestmark = pytest.mark.peers

POLL = 60.0  # the workers' poll in these tests: a reply found by it would time the test out
SOON = 10.0  # seconds a reply may take to reach the peer


@pytest.fixture
def wdesk(
    home: Path, botapi: Any, smtp_sink: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Desk]:
    monkeypatch.setenv("TEST_TG_TOKEN", botapi.token)
    channels = [telegram_channel(botapi), email_channel(smtp=smtp_sink)]
    write_config(home, desk_config(channels=channels))
    monkeypatch.setattr(loop, "OUTBOX_POLL", POLL)
    d = open_desk(home, agent="alice")
    yield d
    d.close()


class Running:
    """``Runner.run_forever`` in a thread, with a hook after each delivery pass."""

    def __init__(self, desk: Desk, monkeypatch: pytest.MonkeyPatch):
        self.runner = Runner(desk)
        self.passed = threading.Event()  # set after each pass that claimed something
        send_due = self.runner.delivery.send_due

        async def counted(*args: Any, **kw: Any) -> int:
            n = await send_due(*args, **kw)
            if n:
                self.passed.set()
            return n

        monkeypatch.setattr(self.runner.delivery, "send_due", counted)
        self.thread = threading.Thread(target=self.runner.run_forever, daemon=True)

    def __enter__(self) -> OutboxWaker:
        self.thread.start()
        assert self.runner.active.wait(30), "the runner never became active"
        waker: OutboxWaker = wait_until(lambda: self.runner.waker, 30, "the outbox waker")
        assert waker.ready.wait(30), "the outbox waker never started watching"
        return waker

    def __exit__(self, *exc: object) -> None:
        self.runner.stop()
        self.thread.join(30)
        assert not self.thread.is_alive(), "the runner did not stop"


def _tickets(desk: Desk, bot: Any) -> tuple[int, int]:
    bot.add_chat(5151)
    tg = ingest(desk, inbound_telegram(chat_id=5151, text="Где мой заказ?"), historical=True)
    mail = ingest(desk, inbound_email(external_id="wake1@x", sender_address="olga@example.ru"),
                  historical=True)  # fmt: skip
    return int(tg.ticket_id), int(mail.ticket_id)


def _queue(home: Path, ticket_id: int, text: str) -> None:
    """Queue a reply through a desk of its own: other engines, other connections."""
    other = open_desk(home, agent="bob")
    try:
        with other.db.write() as s:
            t = s.get(Ticket, ticket_id)
            assert t is not None
            queue_outbound(s, other, t, text, agent="bob")
    finally:
        other.close()


def test_replies_queued_elsewhere_reach_the_peers_without_the_poll(
    wdesk: Desk, home: Path, botapi: Any, smtp_sink: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    tg, mail = _tickets(wdesk, botapi)
    running = Running(wdesk, monkeypatch)
    with running:
        _queue(home, tg, "Заказ в пути")
        assert botapi.wait_sent(1, timeout=SOON)[0].text == "Заказ в пути"
        # the worker finished the pass that sent it and sleeps on its (one-minute) poll: only a
        # wake-up from the queueing commit gets the next ones out in time
        assert running.passed.wait(SOON)
        running.passed.clear()
        _queue(home, tg, "Курьер будет завтра")
        _queue(home, mail, "Письмо ушло")
        assert [m.text for m in botapi.wait_sent(2, timeout=SOON)][1] == "Курьер будет завтра"
        [got] = smtp_sink.wait_for(1, timeout=SOON)
        body = got.message.get_body(("plain",))
        assert got.rcpt_tos == ["olga@example.ru"] and body is not None
        assert "Письмо ушло" in body.get_content()


def test_a_reply_from_the_cli_process_goes_out_at_once(
    wdesk: Desk, home: Path, botapi: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    tg, _mail = _tickets(wdesk, botapi)
    with Running(wdesk, monkeypatch):
        env = {**os.environ, "SUPPORTDESK_HOME": ""}
        subprocess.run(
            [sys.executable, "-m", "supportdesk", "--home", str(home), "--as", "bob",
             "tickets", "reply", str(tg), "--text", "Ответ из консоли"],
            env=env, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        assert botapi.wait_sent(1, timeout=SOON)[0].text == "Ответ из консоли"


# ---- the waker on its own ------------------------------------------------------------------


class Woken:
    """What an OutboxWaker said, in order; ``wait`` for a given call."""

    def __init__(self) -> None:
        self.calls: list[set[str] | None] = []
        self.cond = threading.Condition()

    def __call__(self, channels: set[str] | None) -> None:
        with self.cond:
            self.calls.append(channels)
            self.cond.notify_all()

    def wait(self, pred: Any, timeout: float = SOON) -> None:
        """Until ``pred(calls)`` holds."""
        with self.cond:
            assert self.cond.wait_for(lambda: pred(self.calls), timeout), (
                f"not so in {timeout} s; the wake-ups were {self.calls}"
            )


@pytest.fixture
def watching(wdesk: Desk) -> Iterator[tuple[OutboxWaker, Woken]]:
    woken = Woken()
    waker = OutboxWaker(wdesk.db, woken)
    thread = threading.Thread(target=waker.run, daemon=True)
    thread.start()
    assert waker.ready.wait(30)
    try:
        yield waker, woken
    finally:
        waker.stop()
        thread.join(10)
        assert not thread.is_alive(), "the waker did not stop"


def test_the_waker_names_the_channel_and_ignores_commits_that_queue_nothing(
    wdesk: Desk, home: Path, botapi: Any, watching: tuple[OutboxWaker, Woken]
) -> None:
    waker, woken = watching
    tg, mail = _tickets(wdesk, botapi)  # commits that queue nothing: no named wake-up
    _queue(home, mail, "Письмо")
    woken.wait(lambda calls: {"support"} in calls)
    assert woken.calls[0] is None  # on start: anything queued before it watched
    assert all(c in (None, {"support"}) for c in woken.calls), woken.calls


@pytest.mark.skipif(TEST_BACKEND != "postgres", reason="PostgreSQL's LISTEN connection")
def test_the_listener_holds_no_transaction_and_comes_back_after_losing_its_connection(
    wdesk: Desk, home: Path, botapi: Any, watching: tuple[OutboxWaker, Woken]
) -> None:
    import psycopg

    waker, woken = watching
    tg, _mail = _tickets(wdesk, botapi)
    admin_url = wdesk.db.url.replace("postgresql+psycopg://", "postgresql://")
    name = "supportdesk outbox wake-ups"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        [(state,)] = admin.execute(
            "SELECT state FROM pg_stat_activity WHERE application_name = %s", (name,)
        ).fetchall()
        assert state == "idle"  # LISTENing, not inside a transaction
        assert waker.connections == 1
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (name,),
        )
    # it connects again, and wakes every worker: something may have been queued meanwhile
    woken.wait(lambda calls: calls.count(None) == 2, timeout=30)
    assert waker.connections == 2
    _queue(home, tg, "После переподключения")
    woken.wait(lambda calls: {"telegram"} in calls)
