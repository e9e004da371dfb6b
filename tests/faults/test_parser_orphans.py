"""Parser processes die with their parent: SIGKILL of `supportdesk import` leaves none behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.inbound.test_packs import _maildir

pytestmark = pytest.mark.fault


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == pid:
            out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the parser processes")
def test_sigkill_of_import_leaves_no_parser_process(home: Path, cli: Any, tmp_path: Path) -> None:
    cli("init")
    box = _maildir(tmp_path / "Maildir", count=3000)
    argv = [sys.executable, "-m", "supportdesk", "--home", str(home), "import", str(box)]
    env = {**os.environ, "SUPPORTDESK_HOME": ""}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None and len(workers) < 2:
        workers = _children(proc.pid)
        time.sleep(0.005)
    if proc.poll() is not None or not workers:
        pytest.skip("the import finished before its parser processes could be seen")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.05)
    left = [w for w in workers if _alive(w)]
    for w in left:  # don't leave them for the next test either
        os.kill(w, signal.SIGKILL)
    assert not left, f"parser processes {left} outlived the killed import"
