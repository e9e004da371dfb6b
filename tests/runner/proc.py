"""Start and stop `supportdesk run` as a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def start_runner(
    home: Path, env: dict[str, str] | None = None, *args: str
) -> subprocess.Popen[bytes]:
    e = dict(os.environ)
    e.update(env or {})
    e.pop("SUPPORTDESK_HOME", None)
    e["PYTHONFAULTHANDLER"] = "1"  # a runner that will not stop shows its threads (stop())
    return subprocess.Popen(
        [sys.executable, "-m", "supportdesk", "--home", str(home), "run", *args],
        env=e,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def stop(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Signal ``proc`` and wait for it to end (a clean stop under load can take a while). After
    ``timeout`` seconds it gets SIGABRT, which (with ``PYTHONFAULTHANDLER``, as start_runner
    sets it) writes every thread's stack to its stderr, where the test's message shows where
    it hung; then it is killed."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_until(cond: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``cond`` until it returns something truthy (bounded); returns it."""
    deadline = time.monotonic() + timeout
    while True:
        val = cond()
        if val:
            return val
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
