"""Console benchmark: start-up, memory, cursor and open latency at 100,000 tickets.

    .venv/bin/python bench/console_bench.py [--size 100000] [--home DIR]

``run(home)`` returns a dict of figures; targets: first queue drawn < 1 s, RSS < 150 MB,
cursor move and open ticket < 50 ms. When ``supportdesk demo --size N`` is not available the
data is made here with bulk inserts (synthetic tickets spread over two channels).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CONFIG = """
[desk]
name = "Bench desk"
timezone = "UTC"
language = "en"

[[channel]]
name = "support"
type = "email"
address = "support@bench.test"

[[channel]]
name = "telegram"
type = "telegram"
token_env = "BENCH_TG_TOKEN"
"""

TARGETS = {"first_queue_s": 1.0, "rss_mb": 150.0, "cursor_ms": 50.0, "open_ms": 50.0}


def populate(home: Path, size: int) -> None:
    """A demo desk with ``size`` synthetic tickets (``supportdesk demo --size N``)."""
    from supportdesk.services.demo import build_demo

    desk = build_demo(home, size=size)
    desk.close()


CHILD = r"""
import json, sys, time
t0 = float(sys.argv[2])
from pathlib import Path
from supportdesk.app import make_app
from supportdesk.services.desk import open_desk
from supportdesk.widgets.ticket_list import TicketList

desk = open_desk(Path(sys.argv[1]), agent="bench")
app = make_app(desk, live=False)
result = {}

async def auto(pilot):
    while True:
        try:
            tl = app.screen.query_one(TicketList)
        except Exception:
            tl = None
        if tl is not None and tl.total > 0 and tl.row_at(0) is not None:
            break
        await pilot.pause(0.01)
    await pilot.pause()
    result["first_queue_s"] = time.time() - t0
    result["total"] = tl.total
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            result["rss_mb"] = int(line.split()[1]) / 1024
    app.exit()

app.run(headless=True, size=(120, 40), auto_pilot=auto)
print(json.dumps(result))
"""


def _first_queue(home: Path) -> dict[str, Any]:
    t0 = time.time()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(home), repr(t0)],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
        env={**os.environ, "SUPPORTDESK_CONSOLE_RUNNER": "0"},
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"the console did not start: {out.stderr.strip()[-500:]}")
    doc: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    doc["peak_rss_mb"] = round(peak, 1)
    return doc


async def _latencies(home: Path, moves: int = 40, opens: int = 5) -> dict[str, Any]:
    from supportdesk.app import make_app
    from supportdesk.services.desk import open_desk
    from supportdesk.widgets.ticket_list import TicketList

    desk = open_desk(home, agent="bench")
    app = make_app(desk, live=False)
    cursor: list[float] = []
    opened: list[float] = []
    jump = 0.0
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        tl = app.screen.query_one(TicketList)
        for _ in range(moves):
            t = time.perf_counter()
            await pilot.press("down")
            cursor.append(time.perf_counter() - t)
        t = time.perf_counter()
        await pilot.press("end")
        jump = time.perf_counter() - t
        await pilot.press("home")
        for _ in range(opens):
            tid = tl.current_id
            assert tid is not None
            t = time.perf_counter()
            await pilot.press("enter")
            await pilot.pause()
            opened.append(time.perf_counter() - t)
            await pilot.press("escape")
            await pilot.pause()
            await pilot.press("down")
    desk.close()
    cursor.sort()
    opened.sort()
    return {
        "cursor_ms": round(cursor[len(cursor) // 2] * 1000, 1),
        "cursor_max_ms": round(cursor[-1] * 1000, 1),
        "jump_to_end_ms": round(jump * 1000, 1),
        "open_ms": round(opened[len(opened) // 2] * 1000, 1),
        "open_max_ms": round(opened[-1] * 1000, 1),
    }


def run(home: Path) -> dict[str, Any]:
    """Figures for the console on the desk at ``home`` (build it with ``populate`` first)."""
    doc = _first_queue(home)
    doc.update(asyncio.run(_latencies(home)))
    doc["first_queue_s"] = round(doc["first_queue_s"], 3)
    doc["rss_mb"] = round(doc.get("rss_mb", 0.0), 1)
    doc["targets"] = TARGETS
    doc["ok"] = all(doc[k] <= v for k, v in TARGETS.items())
    return doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--home", type=Path, default=None, help="reuse (or build) the desk here")
    args = ap.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="console-bench-")) / "desk"
    if not (home / "supportdesk.db").exists():
        t = time.perf_counter()
        populate(home, args.size)
        print(f"built {args.size} tickets in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    print(json.dumps(run(home), indent=2))


if __name__ == "__main__":
    main()
