"""Scale: build a 100,000-ticket demo desk, then the console engineer's figures on it."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from bench.common import Section, time_command
from bench.common import supportdesk as sd

SIZE = 100_000

LABELS = {
    "first_queue_s": ("Console: start to first queue frame", "s", "< 1 s"),
    "rss_mb": ("Console: RSS with the queue open", "MB", "< 150 MB"),
    "cursor_ms": ("Console: cursor move (Pilot)", "ms", "< 50 ms"),
    "open_ms": ("Console: open a ticket (Pilot)", "ms", "< 50 ms"),
}


def _fmt(value: Any, unit: str) -> str:
    if isinstance(value, float):
        return f"{value:.3g} {unit}".strip() if unit else f"{value:.3g}"
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
        label, unit, goal = LABELS.get(key, (f"Console: {key}", "", ""))
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
