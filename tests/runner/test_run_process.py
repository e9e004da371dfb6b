"""`supportdesk run` as a process: new mail and Telegram messages show up by themselves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.factories import raw_email
from tests.runner.helpers import setup_email_home, setup_telegram_home
from tests.runner.proc import start_runner, stop, wait_until

pytestmark = pytest.mark.peers


def _list(home: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, "-m", "supportdesk", "--home", str(home), "tickets", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "SUPPORTDESK_HOME": ""},
    )
    return json.loads(out.stdout)


def test_imap_message_appears_under_run(
    home: Path, imap_account: Any, smtp_sink: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_email_home(home, imap_account, smtp_sink, monkeypatch)
    proc = start_runner(home)
    try:
        from supportdesk.desk.desk import open_desk
        from supportdesk.store.models import ChannelState

        desk = open_desk(home)

        def polled() -> bool:
            with desk.db.read() as s:
                st = s.get(ChannelState, "support")
                return st is not None and st.last_success_at is not None

        wait_until(polled, 15, "the runner's first IMAP poll")
        t0 = time.monotonic()
        imap_account.append("INBOX", raw_email(msgid="live1@example.ru", subject="Живое письмо"))
        rows = wait_until(
            lambda: [r for r in _list(home) if r["subject"] == "Живое письмо"],
            15,
            "the appended mail in tickets list",
            interval=0.1,
        )
        took = time.monotonic() - t0
        assert rows[0]["channel"] == "support"
        print(f"IMAP arrival latency under run: {took:.2f} s")
        smtp_sink.wait_for(1, timeout=10)  # its acknowledgement went out too
    finally:
        stop(proc)
    assert proc.returncode == 0, proc.stderr.read().decode() if proc.stderr else ""


def test_telegram_message_appears_under_run(
    home: Path, botapi: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_telegram_home(home, botapi, monkeypatch)
    proc = start_runner(home)
    try:
        botapi.wait_polling(timeout=60)
        t0 = time.monotonic()
        botapi.push_message(3131, "Живое сообщение", user={"id": 3131, "first_name": "Пётр"})
        rows = wait_until(
            lambda: _list(home), 15, "the Telegram message in tickets list", interval=0.1
        )
        took = time.monotonic() - t0
        assert rows[0]["subject"] == "Живое сообщение"
        print(f"Telegram arrival latency under run: {took:.2f} s")
        botapi.wait_sent(1, timeout=60)
    finally:
        stop(proc)
    assert proc.returncode == 0
