"""A bulk import that is killed, or whose parser process dies, loses and duplicates nothing."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from supportdesk.desk.desk import open_desk
from supportdesk.inbound import importing
from supportdesk.inbound import prep as import_prep
from supportdesk.store.ledger import read_raw
from tests.inbound.test_packs import _maildir

pytestmark = pytest.mark.fault

_real_prepare = import_prep.prepare_chunk


def _dies_on_message_80(home: str, items: list[Any], pack: bool, hints: bool = False) -> list[Any]:
    """prepare_chunk, except that the worker process dies on the chunk holding message 80,
    once the importer has stored its first batch (so the death comes midway, not first)."""
    if any(".M80." in str(getattr(it, "path", "")) for it in items):
        import sqlite3

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with sqlite3.connect(f"file:{home}/supportdesk.db?mode=ro", uri=True) as db:
                if db.execute("SELECT count(*) FROM message").fetchone()[0] > 0:
                    break
            time.sleep(0.01)
        os._exit(9)  # as the kernel's OOM killer would
    return _real_prepare(home, items, pack, hints)


def _rows(home: Path) -> list[tuple[str, str]]:
    desk = open_desk(home)
    with desk.db.read() as s:
        got = s.connection().execute(sa.text("SELECT message_id, raw_sha256 FROM message"))
        return [(r[0], r[1]) for r in got]


def _check_whole(home: Path, count: int) -> None:
    rows = _rows(home)
    assert len(rows) == count
    assert len({mid for mid, _sha in rows}) == count  # nothing twice
    for _mid, sha in rows:  # nothing without its bytes
        assert hashlib.sha256(read_raw(home, sha)).hexdigest() == sha


def test_a_parser_process_that_dies_stops_the_import_with_one_sentence(
    home: Path, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli("init")
    box = _maildir(tmp_path / "Maildir", count=150)
    monkeypatch.setattr(import_prep, "CHUNK", 25)
    monkeypatch.setattr(importing, "BATCH", 25)
    monkeypatch.setattr(import_prep, "prepare_chunk", _dies_on_message_80)
    res = cli("import", str(box), "--workers", "2")
    assert res.exit_code == 1
    assert "Traceback" not in res.output
    assert "parser process stopped unexpectedly" in res.output
    assert 0 < len(_rows(home)) < 150
    monkeypatch.setattr(import_prep, "prepare_chunk", _real_prepare)
    again = cli("import", str(box), "--json", "--workers", "2")
    assert again.exit_code == 0, again.output
    _check_whole(home, 150)


def test_an_import_killed_midway_and_run_again_loses_and_duplicates_nothing(
    home: Path, cli: Any, tmp_path: Path
) -> None:
    cli("init")
    count = 3000
    box = _maildir(tmp_path / "Maildir", count=count)
    argv = [sys.executable, "-m", "supportdesk", "--home", str(home), "import", str(box)]
    env = {**os.environ, "SUPPORTDESK_HOME": ""}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if len(_rows(home)) > 0:
                break  # the first batch is committed: kill it in the middle of the rest
            time.sleep(0.01)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert len(_rows(home)) < count, "the kill did not land mid-import (it had finished)"
    done = subprocess.run(argv + ["--json"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["seen"] == count
    _check_whole(home, count)
