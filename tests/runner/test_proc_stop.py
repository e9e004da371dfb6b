"""tests/runner/proc.stop: a process that does not stop shows its threads' stacks."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.runner.proc import stop

STUCK = """
import signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
def stuck_somewhere():
    time.sleep(60)
stuck_somewhere()
"""


def test_a_process_that_ignores_the_stop_shows_where_it_hung() -> None:
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    proc = subprocess.Popen(
        [sys.executable, "-c", STUCK], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    stop(proc, timeout=0.5)
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.returncode != 0
    assert "stuck_somewhere" in err, err
