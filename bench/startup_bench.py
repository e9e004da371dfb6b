"""CLI start-up and the read commands (issue 21): CPU (user+sys) of `--help`, `tickets list`,
`tickets show`, `search` and `status`, each through the quick path (cli/quick.py) and the full
typer path (``SUPPORTDESK_QUICK=0``), beside `mu find` and `notmuch count` in the same run.

The machine is shared, so wall-clock figures are noise: each figure is the median CPU time of
the child process (``RUSAGE_CHILDREN``), the commands measured in alternating rounds so that a
burst of load falls on all of them alike. Goal: within 100 ms of CPU and no slower than
`mu find`.

Reproduce one row: ``/usr/bin/time -f %U+%S supportdesk --home HOME tickets list --json``
(and with ``SUPPORTDESK_QUICK=0`` for the full path).
"""

from __future__ import annotations

import os
import resource
import subprocess
from collections.abc import Sequence
from pathlib import Path

from bench.common import NA, PYTHON, Section, median, ms, supportdesk, time_command, which

REPEATS = 5
ROUNDS = 7
GOAL_CPU = 0.100
FULL = {"SUPPORTDESK_QUICK": "0"}


def _median_of(args: list[str]) -> float:
    time_command(args)  # warm the page cache and the bytecode cache
    return median([time_command(args) for _ in range(REPEATS)])


def cpu_of(args: Sequence[str], env: dict[str, str] | None = None) -> float:
    """CPU seconds (user+sys) one run of a command took."""
    full_env = dict(os.environ)
    full_env.pop("SUPPORTDESK_HOME", None)
    full_env.update(env or {})
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        list(args),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=full_env,
        check=False,
        timeout=600,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cpu_medians(
    commands: dict[str, tuple[list[str], dict[str, str] | None]], rounds: int = ROUNDS
) -> dict[str, float]:
    """The median CPU of each command over ``rounds`` alternating rounds (after one warm-up)."""
    for args, env in commands.values():
        cpu_of(args, env)
    got: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(rounds):
        for name, (args, env) in commands.items():
            got[name].append(cpu_of(args, env))
    return {k: median(v) for k, v in got.items()}


def _cpu(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms CPU"


def _verdict(quick: float, mu: float | None) -> str:
    goal = "within 100 ms" if quick <= GOAL_CPU else f"{(quick - GOAL_CPU) * 1000:.0f} ms over 100"
    if mu is not None:
        goal += "; " + ("no slower than mu find" if quick <= mu else f"{quick / mu:.1f}x mu find")
    return goal


def read_commands(
    home: Path,
    tickets: str,
    *,
    word: str,
    muhome: Path | None = None,
    notmuch_config: Path | None = None,
    mu_word: str = "invoice",
) -> Section:
    """The read commands on ``home`` (quick and full path) beside mu and notmuch."""
    sec = Section(f"Read commands, CPU (user+sys), on the {tickets} desk (issue 21)")
    cmds: dict[str, tuple[list[str], dict[str, str] | None]] = {
        "floor": ([PYTHON, "-c", "pass"], None),
        "help": (supportdesk(home, "--help"), None),
        "list": (supportdesk(home, "tickets", "list"), None),
        "list full": (supportdesk(home, "tickets", "list"), FULL),
        "list json": (supportdesk(home, "tickets", "list", "--json"), None),
        "list json full": (supportdesk(home, "tickets", "list", "--json"), FULL),
        "status": (supportdesk(home, "status"), None),
        "status full": (supportdesk(home, "status"), FULL),
        "show": (supportdesk(home, "tickets", "show", "1"), None),
        "show full": (supportdesk(home, "tickets", "show", "1"), FULL),
        "show json": (supportdesk(home, "tickets", "show", "1", "--json"), None),
        "show json full": (supportdesk(home, "tickets", "show", "1", "--json"), FULL),
        "search": (supportdesk(home, "search", word, "--json"), None),
        "search full": (supportdesk(home, "search", word, "--json"), FULL),
        "search table": (supportdesk(home, "search", word), None),
        "search table full": (supportdesk(home, "search", word), FULL),
    }
    mu = nm = None
    if muhome is not None and which("mu"):
        cmds["mu"] = (["mu", "find", f"--muhome={muhome}", "--maxnum=100", mu_word], None)
    if notmuch_config is not None and which("notmuch"):
        cmds["notmuch"] = (["notmuch", "count", mu_word], {"NOTMUCH_CONFIG": str(notmuch_config)})
    got = cpu_medians(cmds)
    mu, nm = got.get("mu"), got.get("notmuch")
    mu_cell = _cpu(mu) + f" (`mu find {mu_word}`)" if mu is not None else NA
    nm_cell = _cpu(nm) + f" (`notmuch count {mu_word}`)" if nm is not None else NA
    sec.add("`python -c pass` (the floor)", _cpu(got["floor"]))
    sec.add("`supportdesk --help`", _cpu(got["help"]), mu_cell, nm_cell, _verdict(got["help"], mu))
    for label, key in (
        ("`tickets list` (a table)", "list"),
        ("`tickets list --json` (100 rows)", "list json"),
        ("`status`", "status"),
        ("`tickets show 1` (the thread as text)", "show"),
        ("`tickets show 1 --json`", "show json"),
    ):
        sec.add(
            label,
            f"{_cpu(got[key])} quick path; {_cpu(got[key + ' full'])} full path",
            mu_cell,
            nm_cell,
            _verdict(got[key], mu),
        )
    for label, key in (
        (f"`search {word} --json`", "search"),
        (f"`search {word}` (a table)", "search table"),
    ):
        sec.add(
            label,
            f"{_cpu(got[key])} quick path; {_cpu(got[key + ' full'])} full path",
            mu_cell,
            nm_cell,
            _verdict(got[key], mu),
        )
    return sec


def run_startup(home: Path, count: int) -> Section:
    sec = Section("Command-line start-up (wall clock)")
    base = _median_of([PYTHON, "-c", "pass"])
    helptime = _median_of(supportdesk(home, "--help"))
    listing = _median_of(supportdesk(home, "tickets", "list", "--json", "-n", "1"))
    full = median(
        [
            time_command(supportdesk(home, "tickets", "list", "--json", "-n", "1"), env=FULL)
            for _ in range(REPEATS)
        ]  # fmt: skip
    )
    sec.add(f"`python -c pass` (the floor), median of {REPEATS}", ms(base))
    sec.add(f"`supportdesk --help`, median of {REPEATS}", ms(helptime))
    sec.add(
        f"`supportdesk tickets list --json -n 1` on the {count:,}-message desk, median of {REPEATS}",
        f"{ms(listing)} quick path; {ms(full)} full path",
    )
    return sec
