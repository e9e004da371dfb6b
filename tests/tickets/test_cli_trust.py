"""Nothing misleading at the command line: stdin for '-', CSV on a terminal, a locked database."""

from __future__ import annotations

import json
import os
import pty
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.factories import inbound_email, ingest

OSC52 = "\x1b]52;c;SGVsbG8=\x07"


def test_dash_text_reads_standard_input(desk: Any, cli: Callable[..., Any]) -> None:
    t = ingest(desk, inbound_email(external_id="d1@x")).ticket_id
    res = cli("tickets", "reply", str(t), "--text", "-", input="Line one\nline two\n")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(cli("tickets", "show", str(t), "--json").stdout)
    assert doc["messages"][-1]["text"] == "Line one\nline two\n"
    res = cli("tickets", "note", str(t), "--text", "-", input="a note from stdin")
    assert res.exit_code == 0, res.stderr
    res = cli("templates", "add", "piped", "--text", "-", input="Hello from a pipe")
    assert res.exit_code == 0, res.stderr
    assert "Hello from a pipe" in cli("templates", "show", "piped").stdout


def _home_with_hostile_subject(home: Path, desk: Any) -> None:
    ingest(desk, inbound_email(external_id="h1@x", subject=f"Evil {OSC52} subject"))


def _run(home: Path, *args: str, tty: bool) -> bytes:
    env = {**os.environ, "SUPPORTDESK_HOME": str(home), "SUPPORTDESK_AGENT": "alice",
           "COLUMNS": "200"}  # fmt: skip
    cmd = [sys.executable, "-m", "supportdesk", *args]
    if not tty:
        return subprocess.run(cmd, env=env, capture_output=True, check=True, timeout=60).stdout
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, env=env, stdout=slave, stderr=subprocess.DEVNULL)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=60)
    os.close(master)
    return out


def test_csv_on_a_terminal_is_inert_but_exact_to_a_pipe(home: Path, desk: Any) -> None:
    _home_with_hostile_subject(home, desk)
    piped = _run(home, "tickets", "list", "--csv", tty=False)
    assert OSC52.encode() in piped  # byte-exact to a file or a pipe
    shown = _run(home, "tickets", "list", "--csv", tty=True)
    assert b"Evil" in shown and b"\x1b" not in shown and b"\x07" not in shown


@pytest.mark.sqlite_only
def test_a_locked_database_is_exit_7_with_one_sentence(
    desk: Any, cli: Callable[..., Any], home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import supportdesk.store.db as db

    t = ingest(desk, inbound_email(external_id="l1@x")).ticket_id
    monkeypatch.setattr(db, "BUSY_TIMEOUT_MS", 200)
    holder = sqlite3.connect(home / "supportdesk.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        res = cli("tickets", "set", str(t), "--status", "pending")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert res.exit_code == 7, (res.exit_code, res.stderr)
    assert "locked" in res.stderr and "internal error" not in res.stderr
    assert res.stderr.count("\n") == 1
