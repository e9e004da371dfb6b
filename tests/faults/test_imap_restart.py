"""The IMAP server restarted in the middle of a fetch: the pass that was cut off reports the
error, what it committed stays, and the next pass fetches the rest — nothing lost, nothing twice.

The deterministic tests restart Dovecot between two batches of one fetch (10 messages a batch,
through `supportdesk poll --once --json`); the last one restarts it repeatedly under
`supportdesk run` while a big folder is being read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from supportdesk.channels.email.imap import FolderCursor, ImapSource
from supportdesk.desk.desk import open_desk
from supportdesk.store.models import Message
from tests.factories import raw_email
from tests.runner.helpers import setup_email_home
from tests.runner.proc import start_runner, stop, wait_until

pytestmark = [pytest.mark.fault, pytest.mark.peers]

BATCH = 10


def _mails(count: int, tag: str) -> tuple[list[str], list[bytes]]:
    ids = [f"{tag}{i}@example.ru" for i in range(count)]
    raws = [
        raw_email(msgid=m, frm=f"c{i % 7}@example.ru", subject=f"письмо {i}", body="текст " * 50)
        for i, m in enumerate(ids)
    ]
    return ids, raws


def _inbound(home: Path) -> list[str]:
    desk = open_desk(home)
    try:
        with desk.db.read() as s:
            rows = s.exec(select(Message.dedupe_key).where(Message.direction == "in")).all()
            return [str(k) for k in rows]
    finally:
        desk.close()


def _restart_after(monkeypatch: pytest.MonkeyPatch, server: Any, batches: int) -> list[int]:
    """Make every fetch go in batches of 10, and restart the server once, after ``batches``
    batches were handed over (and committed by the runner)."""
    original = ImapSource.fetch_new
    restarts: list[int] = []

    def fetch_new(
        self: ImapSource, folder: str, cursor: FolderCursor | None, batch: int = BATCH
    ) -> Iterator[tuple[list[tuple[int, bytes]], FolderCursor]]:
        done = 0
        for item in original(self, folder, cursor, BATCH):
            yield item
            done += 1
            if done == batches and not restarts:
                server.restart()  # drops every open session, like a real restart
                restarts.append(item[1].last_uid)

    monkeypatch.setattr(ImapSource, "fetch_new", fetch_new)
    return restarts


def _poll(cli: Callable[..., Any]) -> tuple[int, dict[str, Any]]:
    res = cli("poll", "--once", "--json")
    assert "Traceback" not in res.output
    return res.exit_code, json.loads(res.stdout)


@pytest.mark.parametrize("batches", [1, 3])
def test_restart_between_batches(
    home: Path,
    imap_account: Any,
    smtp_sink: Any,
    monkeypatch: pytest.MonkeyPatch,
    cli: Callable[..., Any],
    batches: int,
) -> None:
    setup_email_home(home, imap_account, smtp_sink, monkeypatch)
    total = 45
    ids, raws = _mails(total, f"r{batches}-")
    imap_account.append_many("INBOX", raws)
    restarts = _restart_after(monkeypatch, imap_account.server, batches)

    code, rep = _poll(cli)
    assert restarts == [BATCH * batches]
    assert code == 1
    [ch] = rep["channels"]
    assert ch["error"] and imap_account.password not in ch["error"]
    stored = _inbound(home)
    assert len(stored) == BATCH * batches  # the committed batches stayed
    status = json.loads(cli("status", "--json").stdout)
    assert status["channels"][0]["state"] == "error"

    code, rep = _poll(cli)  # the server is back: the next pass completes
    assert code == 0 and rep["channels"][0]["error"] is None
    assert rep["channels"][0]["fetched"] == total - BATCH * batches
    code, rep = _poll(cli)
    assert rep["channels"][0]["fetched"] == 0

    stored = _inbound(home)
    lost = set(ids) - set(stored)
    duplicated = len(stored) - len(set(stored))
    assert not lost and duplicated == 0 and len(stored) == total
    # nothing was marked read on the server by any of this
    assert all("\\Seen" not in f for f in imap_account.flags("INBOX").values())


def test_repeated_restarts_under_run(
    home: Path, imap_account: Any, smtp_sink: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_email_home(home, imap_account, smtp_sink, monkeypatch, poll_interval=1)
    total = 300
    ids, raws = _mails(total, "run-")
    proc = start_runner(home)
    try:
        wait_until(lambda: _status_ok(home), 15, "the runner's first poll")
        for part in range(3):
            imap_account.append_many("INBOX", raws[part * 100 : (part + 1) * 100])
            imap_account.server.restart()
        wait_until(lambda: len(_inbound(home)) >= total, 60, "every message stored", 0.2)
    finally:
        stop(proc)
    stored = _inbound(home)
    lost = set(ids) - set(stored)
    duplicated = len(stored) - len(set(stored))
    assert not lost and duplicated == 0 and len(stored) == total


def _status_ok(home: Path) -> bool:
    from supportdesk.store.models import ChannelState

    desk = open_desk(home)
    try:
        with desk.db.read() as s:
            st = s.get(ChannelState, "support")
            return st is not None and st.last_success_at is not None
    finally:
        desk.close()
