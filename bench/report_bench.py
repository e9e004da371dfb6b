"""Report and sidebar counts on the big demo desk: a 7-day and a 30-day `report` side by side
(the cost follows the period, not the history), and the console's view counts.

The command is measured as a user runs it (``python -m supportdesk``, the ``supportdesk``
entry point: the quick path of ``cli/quick.py`` on a SQLite desk), and once more on the full
typer path (``SUPPORTDESK_QUICK=0``) for comparison.

CPU time, not wall clock: the machine is shared. Each CLI run is a child process measured with
``os.wait4`` (user + system CPU and peak RSS); the periods alternate, three rounds, medians.

    python -m bench                          # the Report section, on "Scale and console"'s desk
    python -m bench.report_bench DESK_HOME   # on a desk you built (`supportdesk demo --size N`)
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from bench.common import Section
from bench.common import supportdesk as sd

ROUNDS = 3
PERIODS = (7, 30)


def _child(args: list[str], extra_env: dict[str, str] | None = None) -> tuple[float, float]:
    """(user + system CPU seconds, peak RSS in MB) of one run of a command.

    Through ``/usr/bin/time`` when it is there: Linux keeps a process's peak RSS across exec, so
    ``wait4`` on a child forked from this (large) process would report at least our own size.
    """
    env = {**os.environ, **(extra_env or {})}
    env.pop("SUPPORTDESK_HOME", None)
    timer = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        full = [timer, "-f", "%U %S %M", "-o", out.name, *args] if timer else args
        proc = subprocess.Popen(full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        _pid, status, usage = os.wait4(proc.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if code != 0:
            raise RuntimeError(f"{' '.join(args[3:6])} exited {code}: {err[-300:]}")
        if timer:
            user, system, rss_kb = out.read().split()[-3:]
            return float(user) + float(system), int(rss_kb) / 1024
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def report_figures(home: Path) -> dict[str, dict[str, float]]:
    """Per period: CLI CPU and RSS (medians), and in-process CPU of ``metrics.report``."""
    from supportdesk.desk.desk import open_desk
    from supportdesk.reports import metrics

    until = date.today()
    cli: dict[int, list[tuple[float, float]]] = {d: [] for d in PERIODS}
    full: list[tuple[float, float]] = []  # 30 days on the full typer path
    inproc: dict[int, list[float]] = {d: [] for d in PERIODS}
    desk = open_desk(home)
    try:
        for _round in range(ROUNDS):
            for days in PERIODS:  # alternate, so load drifts hit both alike
                since = until - timedelta(days=days - 1)
                cli[days].append(
                    _child(
                        sd(home, "report", "--since", f"{since}", "--until", f"{until}", "--json")
                    )
                )
                if days == 30:
                    args = sd(home, "report", "--since", f"{since}", "--until", f"{until}")
                    full.append(_child([*args, "--json"], {"SUPPORTDESK_QUICK": "0"}))
                t0 = time.process_time()
                metrics.report(desk, since, until)
                inproc[days].append(time.process_time() - t0)
    finally:
        desk.close()
    out = {
        f"{d}d": {
            "cli_cpu_s": statistics.median(c for c, _r in cli[d]),
            "cli_rss_mb": statistics.median(r for _c, r in cli[d]),
            "inproc_cpu_s": statistics.median(inproc[d]),
        }
        for d in PERIODS
    }
    out["30d"]["full_cli_cpu_s"] = statistics.median(c for c, _r in full)
    out["30d"]["full_cli_rss_mb"] = statistics.median(r for _c, r in full)
    return out


def count_figures(home: Path) -> dict[str, float]:
    """CPU seconds of the sidebar's counts: one pass (``views.counts``) against one COUNT per
    view (how they were counted before), alternating, medians."""
    from supportdesk.desk.desk import open_desk
    from supportdesk.tickets import views

    desk = open_desk(home)
    one_pass: list[float] = []
    per_view: list[float] = []
    try:
        vs = views.all_views(desk)
        for _round in range(ROUNDS):
            t0 = time.process_time()
            views.counts(desk, vs)  # equal to the per-view counts: tests/tickets/test_view_counts
            one_pass.append(time.process_time() - t0)
            t0 = time.process_time()
            for v in vs:
                views.count(desk, v.query)
            per_view.append(time.process_time() - t0)
    finally:
        desk.close()
    return {
        "views": float(len(vs)),
        "one_pass_cpu_s": statistics.median(one_pass),
        "per_view_cpu_s": statistics.median(per_view),
    }


def run_report(home: Path, size: int) -> Section:
    sec = Section(f"Report and view counts at {size:,} tickets (bench/report_bench.py)")
    figs = report_figures(home)
    for period, f in figs.items():
        sec.add(
            f"`report --json` for {period[:-1]} days: CPU (user+sys), peak RSS",
            f"{f['cli_cpu_s']:.2f} s, {f['cli_rss_mb']:.0f} MB",
            note="follows the period: 7 days well under 30" if period == "7d" else "",
        )
        if "full_cli_cpu_s" in f:
            sec.add(
                f"`report --json` for {period[:-1]} days, full typer path "
                "(`SUPPORTDESK_QUICK=0`): CPU (user+sys), peak RSS",
                f"{f['full_cli_cpu_s']:.2f} s, {f['full_cli_rss_mb']:.0f} MB",
                note="the row above is the quick path a user runs",
            )
        sec.add(
            f"`metrics.report` for {period[:-1]} days in-process, CPU",
            f"{f['inproc_cpu_s']:.2f} s",
            note="30 days at 1M tickets: < 1 s, < 150 MB" if period == "30d" else "",
        )
    c = count_figures(home)
    sec.add(
        f"Console sidebar counts ({c['views']:.0f} views), CPU: one pass",
        f"{c['one_pass_cpu_s'] * 1000:.0f} ms",
        note="never one scan per view",
    )
    sec.add(
        "Console sidebar counts, CPU: one COUNT per view (before)",
        f"{c['per_view_cpu_s'] * 1000:.0f} ms",
    )
    return sec


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("desk_home", type=Path, help="a desk built with `supportdesk demo --size N`")
    desk_home = ap.parse_args().desk_home
    if not (desk_home / "supportdesk.db").is_file() and not (desk_home / "config.toml").is_file():
        sys.exit(f"report_bench: {desk_home} is not a desk (no supportdesk.db or config.toml)")
    for k, v in {**report_figures(desk_home), "counts": count_figures(desk_home)}.items():
        print(k, {n: round(x, 3) for n, x in v.items()})
