"""SIGKILL the runner at random moments while messages arrive: nothing lost, nothing twice."""

from __future__ import annotations

import collections
import json
import random
import signal
import threading
import time
from collections.abc import Callable
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, func, select

from supportdesk.desk.desk import open_desk
from supportdesk.inbound.ingest import ingest
from supportdesk.outbound.outbox import queue_outbound
from supportdesk.store.models import Event, Lease, Message, Outbox, Ticket
from tests.factories import inbound_email, inbound_telegram, raw_email
from tests.runner.helpers import setup_email_home, setup_telegram_home
from tests.runner.proc import start_runner, stop, wait_until

pytestmark = [pytest.mark.fault, pytest.mark.peers]

KILLS = 5


def _kill_repeatedly(
    home: Path,
    rnd: random.Random,
    progress: Callable[[], int],
    total: int,
    active: threading.Event | None = None,
) -> list[int]:
    """Start the runner, wait until it has stored something more, SIGKILL it a random moment
    later; up to KILLS times (fewer when everything is stored). Returns the progress at each
    kill and asserts that the first kill landed mid-work (some stored, not all): a kill while
    the runner is still starting up tests nothing."""
    marks: list[int] = []
    for _ in range(KILLS):
        before = progress()
        if before >= total:
            break
        proc = start_runner(home)
        if active is not None and not active.is_set():
            wait_until(lambda: _holder_pid(home) == proc.pid, 60, "the runner to be active")  # noqa: B023
            active.set()  # the messages start arriving now, while it works
        wait_until(lambda: progress() > before, 60, "the runner to store something")  # noqa: B023
        time.sleep(rnd.uniform(0, 0.2))  # a random moment: this is the fault being injected
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        marks.append(progress())
    assert marks and 0 < marks[0] < total, f"the first kill did not land mid-work: {marks}"
    return marks


def _holder_pid(home: Path) -> int | None:
    desk = open_desk(home)
    try:
        with desk.db.read() as s:
            lease = s.get(Lease, "runner")
            return lease.pid if lease is not None and lease.holder else None
    finally:
        desk.close()


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

    arriving = threading.Event()

    def pusher() -> None:
        arriving.wait(120)
        for i in range(total):
            chat = 7000 + i % 15
            upd = botapi.push_message(
                chat, f"сообщение {i}", user={"id": chat, "first_name": f"U{chat}"}
            )
            pushed.append(f"tg:{chat}:{upd['message']['message_id']}")
            time.sleep(0.08)

    t = threading.Thread(target=pusher)
    t.start()
    kills = _kill_repeatedly(home, rnd, lambda: len(_inbound(desk)), total, arriving)
    arriving.set()
    t.join()
    proc = start_runner(home)
    try:
        wait_until(lambda: len(_inbound(desk)) >= total, 30, "all Telegram messages stored")
        wait_until(lambda: not botapi.pending, 15, "every update confirmed")
        # an acknowledgement a kill left held (queued, its text not rendered) is finished
        wait_until(lambda: not _held_acks(desk), 30, "held acknowledgements finished")
    finally:
        stop(proc)
    keys = _inbound(desk)
    lost = set(pushed) - set(keys)
    dup = len(keys) - len(set(keys))
    print(f"telegram: kills at {kills}, {total} messages, lost {len(lost)}, duplicated {dup}")
    assert not lost and dup == 0 and len(keys) == total
    with desk.db.read() as s:
        assert s.exec(select(func.count()).select_from(Ticket)).one() == 15
        # one acknowledgement per ticket, whichever step a kill interrupted
        acks = s.exec(select(Outbox.ticket_id).where(col(Outbox.payload).contains('"auto": true')))
        assert sorted(collections.Counter(acks.all()).values()) == [1] * 15


def _held_acks(desk: Any) -> list[int]:
    from supportdesk.inbound.ack import PENDING

    with desk.db.read() as s:
        rows = s.exec(select(Outbox).where(col(Outbox.payload).contains(f'"{PENDING}"'))).all()
        return [r.id or 0 for r in rows if r.state == "queued"]


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
    kills = _kill_repeatedly(home, rnd, lambda: len(_inbound(desk)), total)
    proc = start_runner(home)
    try:
        wait_until(lambda: len(_inbound(desk)) >= total, 60, "all IMAP messages stored")
    finally:
        stop(proc)
    keys = _inbound(desk)
    lost = set(ids) - set(keys)
    print(
        f"imap: kills at {kills}, {total} messages, lost {len(lost)}, duplicated {len(keys) - len(set(keys))}"
    )
    assert not lost and len(keys) == total == len(set(keys))


KILLS_SENDING = 10


def _kill_while_sending(
    home: Path, delivered: Callable[[], int], total: int, rnd: random.Random
) -> list[tuple[int, int]]:
    """Start the runner, let it deliver at least one more message, SIGKILL it a random moment
    later, ten times. Returns (delivered before, delivered at the kill) per kill, and asserts
    every kill landed while there was still work: mid-work, not after the outbox emptied."""
    marks = []
    for _ in range(KILLS_SENDING):
        proc = start_runner(home)
        before = delivered()
        wait_until(lambda: delivered() > before, 30, "the runner to deliver something")  # noqa: B023
        time.sleep(rnd.uniform(0, 0.25))  # a random moment: this is the fault being injected
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        at_kill = delivered()
        assert before < at_kill < total, f"the kill did not land mid-work ({before}, {at_kill})"
        marks.append((before, at_kill))
    return marks


def _outbox_rows(desk: Any) -> list[Outbox]:
    with desk.db.read() as s:
        return list(s.exec(select(Outbox).where(col(Outbox.ticket_id).is_not(None))).all())


def _settled(desk: Any) -> bool:
    return all(r.state in ("sent", "in_doubt") for r in _outbox_rows(desk))


def _resent_in_doubt(desk: Any) -> set[int]:
    with desk.db.read() as s:
        evs = s.exec(select(Event).where(Event.kind == "delivery_resent_in_doubt")).all()
    return {int(json.loads(e.data)["outbox_id"]) for e in evs}


@pytest.mark.parametrize("policy", ["ask", "default"])
def test_smtp_kill_during_outbox_sending(
    home: Path, imap_account: Any, smtp_sink: Any, monkeypatch: pytest.MonkeyPatch, policy: str
) -> None:
    """Ten SIGKILLs while replies go out. With ``in_doubt = "ask"`` nothing is delivered twice
    (a reply that may have arrived is listed as in doubt); with the e-mail default a reply that
    may have arrived is sent again with its Message-ID, and only such recorded resends repeat."""
    setup_email_home(home, imap_account, smtp_sink, monkeypatch)
    if policy == "ask":
        cfg = (home / "config.toml").read_text()
        cfg = cfg.replace(
            'address = "support@acme.test"\n', 'address = "support@acme.test"\nin_doubt = "ask"\n'
        )
        (home / "config.toml").write_text(cfg)
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
    smtp_sink.slow(0.02, at="data")  # the answer to the end of DATA comes late: the risky window
    marks = _kill_while_sending(home, lambda: len(smtp_sink.received), total, random.Random(11))
    proc = start_runner(home)
    try:
        wait_until(lambda: _settled(desk), 60, "the whole outbox sent or in doubt")
    finally:
        stop(proc)
    rows = _outbox_rows(desk)
    got = collections.Counter(
        message_from_bytes(m.raw)["Message-ID"].strip("<>") for m in smtp_sink.received
    )
    doubt = [r for r in rows if r.state == "in_doubt"]
    resent = _resent_in_doubt(desk)
    print(f"smtp ({policy}): kills at {marks}; {total} replies, {sum(got.values())} deliveries, "
          f"{len(got)} distinct, in doubt {len(doubt)}, resent in doubt {len(resent)}")  # fmt: skip
    by_id = {r.external_message_id.strip("<>"): r for r in rows}
    assert set(got) <= set(by_id)
    for mid, n in got.items():
        row = by_id[mid]
        if n > 1:  # never silent: only a resend recorded as such, never under "ask"
            assert policy == "default" and row.id in resent, (mid, n)
    for r in rows:  # nothing lost: sent rows arrived; in-doubt rows are listed for an agent
        if r.state == "sent":
            assert got[r.external_message_id.strip("<>")] >= 1
    assert len(doubt) <= KILLS_SENDING
    if policy == "ask":
        assert sum(got.values()) == len(got)  # zero duplicates
    else:
        assert not doubt and len(got) == total  # every reply arrived; repeats are recorded


def test_telegram_kill_during_sending(
    home: Path, botapi: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten SIGKILLs while chat replies go out: Telegram has no idempotency key, so a reply whose
    request may have reached the Bot API is "in doubt" (listed), never sent again silently."""
    setup_telegram_home(home, botapi, monkeypatch)
    desk = open_desk(home)
    total = 120
    with desk.db.write() as s:
        for i in range(total):
            chat = 8000 + i
            botapi.add_chat(chat)
            r = ingest(s, desk, inbound_telegram(chat_id=chat, text=f"вопрос {i}"), historical=True)
            queue_outbound(s, desk, s.get(Ticket, r.ticket_id), f"ответ {i}", agent="alice")
    botapi.delays["sendMessage"] = 0.02
    marks = _kill_while_sending(home, lambda: len(botapi.sent), total, random.Random(5))
    proc = start_runner(home)
    try:
        wait_until(lambda: _settled(desk), 60, "the whole outbox sent or in doubt")
    finally:
        stop(proc)
    rows = _outbox_rows(desk)
    got = collections.Counter(m.text for m in botapi.sent)
    with desk.db.read() as s:
        text = {m.id: m.text for m in s.exec(select(Message)).all()}
    doubt = [r for r in rows if r.state == "in_doubt"]
    print(f"telegram: kills at {marks}; {total} replies, {sum(got.values())} deliveries, "
          f"in doubt {len(doubt)}")  # fmt: skip
    assert all(n == 1 for n in got.values()), got  # zero duplicates
    for r in rows:
        if r.state == "sent":
            assert got[text[r.message_id]] == 1
    assert len(doubt) <= KILLS_SENDING
    assert len(got) >= total - len(doubt)  # nothing lost beyond what is listed in doubt
    listed = cli_list_in_doubt(home)
    assert listed == {r.id for r in doubt}


def cli_list_in_doubt(home: Path) -> set[int]:
    from typer.testing import CliRunner

    from supportdesk.cli.main import app

    res = CliRunner().invoke(
        app, ["--home", str(home), "outbox", "list", "--state", "in_doubt", "--json"]
    )
    assert res.exit_code == 0, res.output
    return {int(r["id"]) for r in json.loads(res.stdout)}
