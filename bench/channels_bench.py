"""Channels over loopback against the real test peers: a Dovecot, an aiosmtpd sink, and the
Telegram Bot API stand-in from tests/peers/.

* arrival latency under `supportdesk run`: from APPEND (or pushing a Telegram update) until the
  ticket is in the queue, read the way `tickets list` reads it (the list_tickets service, looked
  at every 10 ms from this process);
* IMAP ingest rate: 2,000 messages fetched by `supportdesk poll --once` on a fresh home;
* outbox send rate: queued replies handed to the SMTP sink by the runner's sender.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import PYTHON, Section, median, rate, run, secs, supportdesk, time_command
from bench.gen_maildir import generate, make_maildir

ARRIVALS = 5
INGEST_COUNT = 2000
OUTBOX_COUNT = 300
APPEND_CHUNK = 200  # messages per MULTIAPPEND while filling the ingest mailbox
IMAP_PASSWORD_ENV = "BENCH_IMAP_PASSWORD"
TG_TOKEN_ENV = "BENCH_TG_TOKEN"
VK_TOKEN_ENV = "BENCH_VK_TOKEN"
WA_ENV = {"token": "BENCH_WA_TOKEN", "secret": "BENCH_WA_SECRET", "verify": "BENCH_WA_VERIFY"}


def _email_config(account: Any, sink: Any, *, acknowledge: bool = True) -> str:
    return f"""
[desk]
name = "Bench desk"
timezone = "UTC"

[[channel]]
name = "support"
type = "email"
address = "support@acme.test"
acknowledge = {"true" if acknowledge else "false"}
  [channel.imap]
  host = "{account.host}"
  port = {account.port}
  security = "none"
  username = "{account.username}"
  password_env = "{IMAP_PASSWORD_ENV}"
  timeout = 30
  [channel.smtp]
  host = "{sink.host}"
  port = {sink.port}
  security = "none"
  timeout = 10
"""


def _telegram_config(bot: Any) -> str:
    return f"""
[desk]
name = "Bench desk"
timezone = "UTC"

[[channel]]
name = "telegram"
type = "telegram"
token_env = "{TG_TOKEN_ENV}"
api_url = "{bot.api_url}"
file_url = "{bot.file_url}"
"""


def _vk_config(vk: Any) -> str:
    return f"""
[desk]
name = "Bench desk"
timezone = "UTC"

[[channel]]
name = "vk"
type = "vk"
group_id = {vk.group_id}
token_env = "{VK_TOKEN_ENV}"
api_url = "{vk.api_url}"
"""


def _wa_config(graph: Any, port: int) -> str:
    return f"""
[desk]
name = "Bench desk"
timezone = "UTC"

[[channel]]
name = "whatsapp"
type = "whatsapp"
phone_number_id = "{graph.phone_number_id}"
token_env = "{WA_ENV["token"]}"
app_secret_env = "{WA_ENV["secret"]}"
verify_token_env = "{WA_ENV["verify"]}"
api_url = "{graph.api_url}"
listen = "127.0.0.1:{port}"
"""


def _home(work: Path, name: str, config: str) -> Path:
    home = work / name
    home.mkdir(parents=True, mode=0o700)
    (home / "config.toml").write_text(config, encoding="utf-8")
    return home


def _wait(cond: Callable[[], Any], timeout: float, what: str, every: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


@contextmanager
def _runner(home: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    e = {k: v for k, v in os.environ.items() if k != "SUPPORTDESK_HOME"}
    e.update(env)
    proc = subprocess.Popen(
        [PYTHON, "-m", "supportdesk", "--home", str(home), "run"],
        env=e,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _newest_subject(desk: Any) -> str | None:
    from supportdesk.tickets.read import list_tickets

    with desk.db.read() as s:
        rows = list_tickets(s, desk, limit=1, order="newest")
    return rows[0].subject if rows else None


def _imap_arrival(work: Path, server: Any, sink: Any) -> list[float]:
    from supportdesk.desk.desk import open_desk
    from supportdesk.store.models import ChannelState

    account = server.add_user()
    home = _home(work, "imap-run", _email_config(account, sink))
    os.environ[IMAP_PASSWORD_ENV] = account.password
    desk = open_desk(home, agent="bench")
    times: list[float] = []
    try:
        with _runner(home, {IMAP_PASSWORD_ENV: account.password}):

            def polled() -> bool:
                with desk.db.read() as s:
                    st = s.get(ChannelState, "support")
                    return st is not None and st.last_success_at is not None

            _wait(polled, 30, "the runner's first IMAP poll", every=0.05)
            time.sleep(1.0)  # let the runner settle into IDLE: the steady state we measure
            for i in range(ARRIVALS):
                subject = f"Arrival {i} {time.time_ns()}"
                raw = (
                    f"From: Bench <arrival{i}@example.ru>\r\nTo: support@acme.test\r\n"
                    f"Subject: {subject}\r\nMessage-ID: <arrival{i}.{time.time_ns()}@bench>\r\n"
                    f"\r\nHello\r\n"
                ).encode()
                t0 = time.perf_counter()
                account.append("INBOX", raw)
                _wait(lambda s=subject: _newest_subject(desk) == s, 30, "the appended message")  # type: ignore[misc]
                times.append(time.perf_counter() - t0)
    finally:
        desk.close()
    return times


def _telegram_arrival(work: Path) -> list[float]:
    from supportdesk.desk.desk import open_desk
    from tests.peers.botapi import BotAPIServer

    bot = BotAPIServer().start()
    if bot._httpd is not None:  # a long poll cut short by stopping the runner is no error here
        bot._httpd.handle_error = lambda *_a: None  # type: ignore[method-assign]
    home = _home(work, "tg-run", _telegram_config(bot))
    desk = open_desk(home, agent="bench")
    times: list[float] = []
    try:
        with _runner(home, {TG_TOKEN_ENV: bot.token}):
            bot.wait_polling(timeout=30)
            for i in range(ARRIVALS):
                text = f"Сообщение {i} {time.time_ns()}"
                chat = 81000 + i
                t0 = time.perf_counter()
                bot.push_message(chat, text, user={"id": chat, "first_name": f"U{i}"})
                _wait(lambda t=text: _newest_subject(desk) == t, 30, "the Telegram message")  # type: ignore[misc]
                times.append(time.perf_counter() - t0)
                bot.wait_polling(timeout=30)  # the runner is long-polling again
    finally:
        desk.close()
        bot.stop()
    return times


def _vk_arrival(work: Path) -> list[float]:
    from supportdesk.desk.desk import open_desk
    from tests.peers.vkapi import VkAPIServer

    vk = VkAPIServer().start()
    if vk._httpd is not None:  # a long poll cut short by stopping the runner is no error here
        vk._httpd.handle_error = lambda *_a: None  # type: ignore[method-assign]
    home = _home(work, "vk-run", _vk_config(vk))
    desk = open_desk(home, agent="bench")
    times: list[float] = []
    try:
        with _runner(home, {VK_TOKEN_ENV: vk.token}):
            vk.wait_polling(timeout=30)
            for i in range(ARRIVALS):
                text = f"Сообщение VK {i} {time.time_ns()}"
                user = 91000 + i
                vk.add_user(user, f"U{i}")
                t0 = time.perf_counter()
                vk.push_message(user, text)
                _wait(lambda t=text: _newest_subject(desk) == t, 30, "the VK message")  # type: ignore[misc]
                times.append(time.perf_counter() - t0)
                vk.wait_polling(timeout=30)  # the runner is long-polling again
    finally:
        desk.close()
        vk.stop()
    return times


def _whatsapp_arrival(work: Path) -> list[float]:
    import urllib.request

    from supportdesk.desk.desk import open_desk
    from tests.peers.graphapi import GraphAPIServer, sign, text_message
    from tests.peers.util import free_port, port_open

    secret = "bench-app-secret"
    port = free_port()
    with GraphAPIServer() as graph:
        home = _home(work, "wa-run", _wa_config(graph, port))
        desk = open_desk(home, agent="bench")
        env = {WA_ENV["token"]: graph.token, WA_ENV["secret"]: secret, WA_ENV["verify"]: "v"}
        times: list[float] = []
        try:
            with _runner(home, env):
                _wait(lambda: port_open("127.0.0.1", port), 30, "the WhatsApp webhook listener")
                url = f"http://127.0.0.1:{port}/whatsapp/whatsapp"
                for i in range(ARRIVALS):
                    text = f"Сообщение WhatsApp {i} {time.time_ns()}"
                    body = text_message(f"7900555{i:04d}", text)
                    req = urllib.request.Request(
                        url,
                        data=body,
                        headers={
                            "Content-Type": "application/json",
                            "X-Hub-Signature-256": sign(body, secret),
                        },
                    )
                    t0 = time.perf_counter()
                    with urllib.request.urlopen(req, timeout=30) as resp:
                        assert resp.status == 200
                    _wait(lambda t=text: _newest_subject(desk) == t, 30, "the WhatsApp message")  # type: ignore[misc]
                    times.append(time.perf_counter() - t0)
        finally:
            desk.close()
    return times


def _imap_ingest(work: Path, server: Any, sink: Any) -> tuple[float, int]:
    from sqlmodel import func, select

    from supportdesk.desk.desk import open_desk
    from supportdesk.store.models import Message

    account = server.add_user()
    raws = list(generate(INGEST_COUNT, seed=9))
    for i in range(0, len(raws), APPEND_CHUNK):  # one MULTIAPPEND of 2,000 outlasted the
        account.append_many("INBOX", raws[i : i + APPEND_CHUNK])  # client's 10 s under load
    home = _home(work, "imap-ingest", _email_config(account, sink, acknowledge=False))
    took = time_command(
        supportdesk(home, "poll", "--once"), env={IMAP_PASSWORD_ENV: account.password}
    )
    desk = open_desk(home, agent="bench")
    try:
        with desk.db.read() as s:
            stored = s.exec(select(func.count()).select_from(Message)).one()
    finally:
        desk.close()
    return took, int(stored)


def _outbox(work: Path, server: Any, sink: Any) -> tuple[float, int]:
    from sqlmodel import select

    from supportdesk.desk.desk import open_desk
    from supportdesk.outbound.outbox import queue_outbound
    from supportdesk.runner.loop import Runner
    from supportdesk.store.models import Ticket

    account = server.add_user()
    home = _home(work, "outbox", _email_config(account, sink))
    os.environ[IMAP_PASSWORD_ENV] = account.password
    maildir = make_maildir(work / "outbox-maildir", OUTBOX_COUNT * 2, seed=3)
    run(supportdesk(home, "import", str(maildir)))
    desk = open_desk(home, agent="bench")
    try:
        with desk.db.write() as s:
            tickets = s.exec(select(Ticket).limit(OUTBOX_COUNT)).all()
            for t in tickets:
                queue_outbound(s, desk, t, f"Ответ по заявке {t.id}. Thank you!", agent="bench")
        queued = len(tickets)
        before = len(sink.received)
        from supportdesk.runner import state as runtime

        runner = Runner(desk)
        runner.epoch = runtime.acquire_lease(desk, holder=runner.holder)
        # renew the lease every second, as `supportdesk run` does: 300 sends take longer than
        # its 10 s TTL on a loaded machine, and the sender's fence then refuses every send
        stop = threading.Event()

        def heartbeat() -> None:
            while not stop.wait(runtime.HEARTBEAT):
                runner.epoch = runtime.acquire_lease(desk, holder=runner.holder)

        beat = threading.Thread(target=heartbeat, name="bench-lease", daemon=True)
        beat.start()
        try:
            t0 = time.perf_counter()
            while len(sink.received) - before < queued:
                rep = runner.send_outbox(limit=100)
                if rep.outbox_sent == 0:
                    raise RuntimeError(f"the outbox stopped sending: {rep.as_dict()}")
            took = time.perf_counter() - t0
        finally:
            stop.set()
            beat.join()
            runtime.release_lease(desk, holder=runner.holder)
        return took, len(sink.received) - before
    finally:
        desk.close()


def run_channels(work: Path) -> Section:
    sec = Section("Channels (loopback: Dovecot, aiosmtpd, Bot API, VK API and Graph API stand-ins)")
    from tests.peers.dovecot import DOVECOT_BIN, DovecotServer
    from tests.peers.smtp_sink import SmtpSink

    if not Path(DOVECOT_BIN).exists():
        sec.add("IMAP benchmarks", "n/a (dovecot not installed)")
        server = None
    else:
        server = DovecotServer.create()
        server.start()
    sink = SmtpSink()
    sink.start()
    try:
        if server is not None:
            t = _imap_arrival(work, server, sink)
            sec.add(
                f"IMAP arrival under `supportdesk run` (APPEND → in the queue), median of {len(t)}",
                f"{secs(median(t))} (max {secs(max(t))})",
                note="< 3 s (IDLE); a 60 s poller averages 30 s",
            )
        t = _telegram_arrival(work)
        sec.add(
            f"Telegram arrival under `supportdesk run` (update → in the queue), median of {len(t)}",
            f"{secs(median(t))} (max {secs(max(t))})",
            note="long polling",
        )
        t = _vk_arrival(work)
        sec.add(
            f"VK arrival under `supportdesk run` (message → in the queue), median of {len(t)}",
            f"{secs(median(t))} (max {secs(max(t))})",
            note="< 1 s; Bots Long Poll",
        )
        t = _whatsapp_arrival(work)
        sec.add(
            f"WhatsApp arrival under `supportdesk run` (signed webhook → in the queue), median of {len(t)}",
            f"{secs(median(t))} (max {secs(max(t))})",
            note="< 1 s; answered 200 after the commit",
        )
        if server is not None:
            took, stored = _imap_ingest(work, server, sink)
            sec.add(
                f"IMAP ingest: {INGEST_COUNT:,} messages by `poll --once` on a fresh home",
                f"{rate(stored, took)} ({took:.2f} s, {stored:,} stored)",
                note="whole command, acknowledgements off",
            )
            took, sent = _outbox(work, server, sink)
            sec.add(
                f"Outbox: {sent} queued replies sent over SMTP (runner's sender, in-process)",
                f"{rate(sent, took)} ({took:.2f} s)",
            )
    finally:
        sink.cleanup()
        if server is not None:
            server.cleanup()
        os.environ.pop(IMAP_PASSWORD_ENV, None)
    return sec
