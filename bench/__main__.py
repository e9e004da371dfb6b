"""`make bench` / `python -m bench`: every benchmark, one Markdown table with the machine line.

The table goes to stdout and to bench/RESULTS.md. Progress goes to stderr. Sections that need a
peer (mu, notmuch, Dovecot) say "n/a (not installed)" when it is missing; a section that fails is
reported as failed and the others still run.

    python -m bench [--quick] [--keep DIR]

``--quick`` shrinks the corpora (1,000 messages, 10,000 tickets) to try the harness itself.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench.common import ROOT, Section, machine

RESULTS = ROOT / "bench" / "RESULTS.md"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(sections: list[Section], info: dict[str, str], took: float) -> str:
    lines = [
        "## Benchmarks",
        "",
        f"Measured {info['date']} on {info['cpu']}, {info['cores']} cores, {info['ram']} RAM, "
        f"Python {info['python']}; load average (1/5/15 min) {info.get('load_start', '?')} at the "
        f"start, {info.get('load_end', '?')} at the end.  ",
        f"`{info['uname']}`",
        "",
        "| Benchmark | supportdesk | mu | notmuch | Goal / note |",
        "|---|---|---|---|---|",
    ]
    for sec in sections:
        lines.append(f"| **{_cell(sec.title)}** | | | | |")
        for r in sec.rows:
            lines.append(
                f"| {_cell(r.what)} | {_cell(r.ours)} | {_cell(r.mu)} | {_cell(r.notmuch)} "
                f"| {_cell(r.note)} |"
            )
    lines += ["", f"`make bench` took {took:.0f} s in all.", ""]
    return "\n".join(lines)


def _load() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _remove_later(work: Path) -> None:
    """Delete the work folder in the background: tens of thousands of small files (raw ledgers,
    Maildirs, mu and notmuch databases) take minutes to unlink on a slow disk."""
    try:
        subprocess.Popen(
            ["rm", "-rf", "--", str(work)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        print(f"bench: removing {work} in the background", file=sys.stderr)
    except OSError:
        shutil.rmtree(work, ignore_errors=True)


ONLY: str | None = None
_SCALE_DIRS: list[Path] = []


def _scale_work(quick: bool) -> Path:
    """Big desks go to /var/tmp (not a RAM-backed /tmp), removed at the end like ``work``."""
    from bench import scale_bench

    if quick:
        scale_bench.SIZES[:] = [10_000]
    path = Path(tempfile.mkdtemp(prefix="scale-bench-", dir="/var/tmp"))
    _SCALE_DIRS.append(path)
    return path


def _step(name: str, fn: Callable[[], Section], sections: list[Section]) -> None:
    if ONLY is not None and name != ONLY:
        return
    print(f"bench: {name}...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    try:
        sections.append(fn())
    except Exception as exc:  # noqa: BLE001 - report it in the table, keep measuring the rest
        traceback.print_exc(file=sys.stderr)
        sec = Section(name)
        sec.add(f"{name} benchmark", f"failed: {type(exc).__name__}: {exc}")
        sections.append(sec)
    print(f"bench: {name} done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small corpora, to try the harness")
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it")
    ap.add_argument("--no-write", action="store_true", help="do not write bench/RESULTS.md")
    ap.add_argument("--only", help="run only this section (e.g. Delivery); implies --no-write")
    args = ap.parse_args(argv)
    global ONLY
    ONLY = args.only
    if args.only:
        args.no_write = True

    from bench import (
        automation_bench,
        channels_bench,
        console_section,
        deliv_bench,
        import_bench,
        report_bench,
        scale_bench,
        search_compare,
        startup_bench,
        web_bench,
    )

    if args.quick:
        import_bench.REPEATS = 1
        import_bench.BIG = 0
        console_section.SIZE = 10_000
        channels_bench.ARRIVALS = 2
        channels_bench.INGEST_COUNT = 300
        channels_bench.OUTBOX_COUNT = 50
        web_bench.SOCKETS = 100
        automation_bench.ARRIVALS = 5
    count = 1000 if args.quick else import_bench.COUNT

    work = args.keep or Path(tempfile.mkdtemp(prefix="supportdesk-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    info = machine()
    info["load_start"] = _load()
    sections: list[Section] = []
    corpus: list[import_bench.Corpus] = []
    try:

        def do_import() -> Section:
            sec, c = import_bench.run_import(work / "import", count)
            corpus.append(c)
            return sec

        _step("Import", do_import, sections)
        if corpus and corpus[0].home is not None:
            home = corpus[0].home
            _step("Search", lambda: search_compare.run_search(corpus[0], count), sections)
            _step("Command-line start-up", lambda: startup_bench.run_startup(home, count), sections)
            _step(
                "Read commands",
                lambda: startup_bench.read_commands(
                    home,
                    f"{count:,}-message",
                    word="invoice",
                    muhome=corpus[0].muhome,
                    notmuch_config=corpus[0].notmuch_config,
                ),
                sections,
            )
        big: list[Path] = []

        def do_console() -> Section:
            sec, home = console_section.run_console(work / "console", console_section.SIZE)
            big.append(home)
            return sec

        _step("Scale and console", do_console, sections)
        if big:
            mail = corpus[0] if corpus else None
            _step(
                "Read commands at scale",
                lambda: startup_bench.read_commands(
                    big[0],
                    f"{console_section.SIZE:,}-ticket",
                    word="printer",
                    muhome=mail.muhome if mail else None,
                    notmuch_config=mail.notmuch_config if mail else None,
                ),
                sections,
            )
        if big:
            _step(
                "Search at scale",
                lambda: console_section.search_rows(big[0], console_section.SIZE),
                sections,
            )
        if big:
            _step(
                "Report",
                lambda: report_bench.run_report(big[0], console_section.SIZE),
                sections,
            )
        _step("Scale", lambda: scale_bench.run_scale(_scale_work(args.quick)), sections)
        _step("Channels", lambda: channels_bench.run_channels(work / "channels"), sections)
        _step("Delivery", lambda: deliv_bench.run_delivery(work / "delivery"), sections)
        _step(
            "Website channel", lambda: web_bench.run_web(work / "web", web_bench.SOCKETS), sections
        )
        _step(
            "Automation",
            lambda: automation_bench.run_automation(
                work / "automation", console_section.SIZE, big[0] if big else None
            ),
            sections,
        )
    finally:
        if args.keep is None:
            _remove_later(work)
        for path in _SCALE_DIRS:
            _remove_later(path)
    info["load_end"] = _load()
    table = render(sections, info, time.perf_counter() - t0)
    print(table)
    if not args.quick and not args.no_write:
        RESULTS.write_text(table, encoding="utf-8")
        print(f"bench: written to {RESULTS.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
