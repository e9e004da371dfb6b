"""Shared pieces of the benchmarks: the machine line, timing, subprocesses, and result rows."""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
NA = "n/a (not installed)"


@dataclass
class Row:
    """One line of the results table."""

    what: str
    ours: str
    mu: str = "—"
    notmuch: str = "—"
    note: str = ""


@dataclass
class Section:
    title: str
    rows: list[Row] = field(default_factory=list)

    def add(self, what: str, ours: str, mu: str = "—", notmuch: str = "—", note: str = "") -> None:
        self.rows.append(Row(what, ours, mu, notmuch, note))


def machine() -> dict[str, str]:
    """Date, ``uname -a``, CPU model, cores and RAM of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    try:
        uname = subprocess.run(["uname", "-a"], capture_output=True, text=True).stdout.strip()
    except OSError:
        uname = " ".join(platform.uname())
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "uname": uname,
        "cpu": cpu,
        "cores": str(os.cpu_count() or "?"),
        "ram": ram,
        "python": platform.python_version(),
    }


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` took."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run a command with output captured; raise with its stderr when it fails."""
    full_env = dict(os.environ)
    full_env.pop("SUPPORTDESK_HOME", None)
    full_env.update(env or {})
    proc = subprocess.run(
        list(args),
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args[:4])}... exited {proc.returncode}: {proc.stderr.strip()[-500:]}"
        )
    return proc


def time_command(args: Sequence[str], **kw: object) -> float:
    """Wall-clock seconds of one run of a command (it must succeed)."""
    t0 = time.perf_counter()
    run(args, **kw)  # type: ignore[arg-type]
    return time.perf_counter() - t0


def supportdesk(home: Path, *args: str) -> list[str]:
    """The argv of a ``supportdesk`` command on ``home`` (through this Python)."""
    return [PYTHON, "-m", "supportdesk", "--home", str(home), *args]


def which(name: str) -> str | None:
    return shutil.which(name)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def secs(seconds: float) -> str:
    return f"{seconds:.2f} s"


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} msg/s" if seconds > 0 else "∞"
