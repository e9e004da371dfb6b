"""Scale: build a 100,000-ticket demo desk, then the console engineer's figures on it."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from bench.common import Section, time_command
from bench.common import supportdesk as sd

SIZE = 100_000

LABELS = {
    "first_queue_s": ("Console: start to the first queue rows drawn", "s", "< 1 s"),
    "settled_s": ("Console: start until view counts, health and preview have loaded", "s", ""),
    "rss_mb": ("Console: RSS with the queue open", "MB", "< 150 MB"),
    "peak_rss_mb": ("Console: peak RSS", "MB", ""),
    "cursor_ms": ("Console: cursor move, CPU time per key (Pilot), median", "ms", "< 50 ms"),
    "cursor_max_ms": ("Console: cursor move (Pilot), slowest", "ms", ""),
    "jump_to_end_ms": ("Console: jump to the end of the queue", "ms", ""),
    "open_ms": ("Console: open a ticket, CPU time (Pilot), median", "ms", "< 50 ms"),
    "open_max_ms": ("Console: open a ticket (Pilot), slowest", "ms", ""),
    "total": ("Console: tickets in the default queue view", "", ""),
    "cursor_wall_ms": ("Console: cursor move, wall clock", "ms", ""),
    "jump_to_end_wall_ms": ("Console: jump to the end, wall clock", "ms", ""),
    "open_wall_ms": ("Console: open a ticket, wall clock", "ms", ""),
}
UNITS = {"_ms": "ms", "_s": "s", "_mb": "MB"}
SKIP = {"targets", "ok"}  # the goals are in the last column already


def _fmt(value: Any, unit: str) -> str:
    if isinstance(value, float):
        return f"{value:,.3g} {unit}".strip() if value < 1000 else f"{value:,.0f} {unit}".strip()
    if isinstance(value, int):
        return f"{value:,} {unit}".strip()
    return f"{value} {unit}".strip()


def console_rows(sec: Section, home: Path, size: int) -> None:
    """Rows from ``bench/console_bench.py``'s ``run(home) -> dict`` (or "pending")."""
    try:
        mod = importlib.import_module("bench.console_bench")
    except ImportError:
        mod = None
    fn = getattr(mod, "run", None)
    if fn is None:
        for label, _unit, goal in LABELS.values():
            sec.add(
                f"{label} at {size:,} tickets", "pending (bench/console_bench.py run())", note=goal
            )
        return
    try:
        figures: dict[str, Any] = fn(home)
    except Exception as exc:  # noqa: BLE001 - one failing benchmark must not hide the others
        sec.add("Console benchmark", f"failed: {type(exc).__name__}: {exc}")
        return
    for key, value in figures.items():
        if key in SKIP:
            continue
        unit = next((u for suffix, u in UNITS.items() if key.endswith(suffix)), "")
        label, unit, goal = LABELS.get(key, (f"Console: {key}", unit, ""))
        sec.add(f"{label} at {size:,} tickets", _fmt(value, unit), note=goal)


def search_rows(home: Path, size: int) -> Section:
    """Rows from ``bench/search_bench.py``'s ``run(home) -> dict`` on the same big desk."""
    sec = Section(f"Search at {size:,} tickets (bench/search_bench.py)")
    try:
        mod = importlib.import_module("bench.search_bench")
    except ImportError:
        mod = None
    fn = getattr(mod, "run", None)
    if fn is None:
        sec.add("Search at scale", "pending (bench/search_bench.py run())")
        return sec
    doc: dict[str, Any] = fn(home, size)
    for label, fig in (doc.get("in_process") or {}).items():
        if isinstance(fig, dict) and "median_ms" in fig:
            hits = f", {fig['hits']} hits" if "hits" in fig else ""
            sec.add(
                f"In-process {label}, median of warm runs",
                f"{fig['median_ms']} ms (max {fig.get('max_ms', '?')} ms{hits})",
                note="first page < 50 ms",
            )
        elif label in ("tickets", "documents"):
            continue
    for label, value in (doc.get("commands_ms") or {}).items():
        sec.add(f"`{label}` (whole command), median", f"{value} ms")
    return sec


def run_console(work: Path, size: int = SIZE) -> tuple[Section, Path]:
    sec = Section("Scale and console")
    home = work / "demo-big"
    took = time_command(sd(home, "demo", "--size", str(size), "--no-tui"), timeout=900)
    sec.add(
        f"`supportdesk demo --size {size:,} --no-tui` (build the desk)",
        f"{took:.1f} s",
        note="< 2 min",
    )
    console_rows(sec, home, size)
    return sec, home
