"""CLI start-up time: scripts call `supportdesk` often, so imports stay lazy."""

from __future__ import annotations

from pathlib import Path

from bench.common import PYTHON, Section, median, ms, supportdesk, time_command

REPEATS = 5


def _median_of(args: list[str]) -> float:
    time_command(args)  # warm the page cache and the bytecode cache
    return median([time_command(args) for _ in range(REPEATS)])


def run_startup(home: Path, count: int) -> Section:
    sec = Section("Command-line start-up")
    base = _median_of([PYTHON, "-c", "pass"])
    helptime = _median_of(supportdesk(home, "--help"))
    listing = _median_of(supportdesk(home, "tickets", "list", "--json", "-n", "1"))
    sec.add(f"`python -c pass` (the floor), median of {REPEATS}", ms(base))
    sec.add(f"`supportdesk --help`, median of {REPEATS}", ms(helptime))
    sec.add(
        f"`supportdesk tickets list --json -n 1` on the {count:,}-message desk, median of {REPEATS}",
        ms(listing),
    )
    return sec
