"""Search at scale: first-page latency in process on a ``demo --size N`` desk, and the whole
``supportdesk search`` command beside the bare process start-up.

    python -m bench.search_bench [--home DIR] [--size 100000]

``run(home)`` builds the demo desk in ``home`` when it holds none (``build_demo(size=...)``,
bulk inserts, then one index rebuild) and returns the figures as a dict (milliseconds).
The issue's goal: a first page in under 50 ms in process with 100,000 tickets.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import PYTHON, supportdesk, time_command

# common words of the demo's synthetic vocabulary (each in tens of thousands of documents),
# a prefix, a phrase, several words, a filter, a word that is nowhere
QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("принтер", {}),
    ("printer", {}),
    ("принтеры", {"newest": True}),
    ("прин*", {}),
    ('"printer invoice"', {}),
    ("оплата карта", {}),
    ("printer status:open", {}),
    ("refund", {"kinds": ["messages"]}),
    ("zzzzz", {}),
]
REPEATS = 15
COMMAND_REPEATS = 5


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def ensure_demo(home: Path, size: int) -> dict[str, Any]:
    """Build the demo desk in ``home`` unless it is there; returns how long that took."""
    if (home / "supportdesk.db").exists():
        return {"built": False}
    from supportdesk.demo.build import build_demo

    t0 = time.perf_counter()
    build_demo(home, size=size).close()
    return {"built": True, "build_s": round(time.perf_counter() - t0, 1)}


def in_process(home: Path) -> dict[str, Any]:
    from supportdesk.desk.desk import open_desk
    from supportdesk.search.search import search
    from supportdesk.tickets.read import list_tickets

    desk = open_desk(home)
    out: dict[str, Any] = {}
    try:
        with desk.db.read() as s:
            out["tickets"] = int(
                s.connection().exec_driver_sql("SELECT count(*) FROM ticket").scalar() or 0
            )
            out["documents"] = int(
                s.connection().exec_driver_sql("SELECT count(*) FROM search_doc").scalar() or 0
            )
        for query, kw in QUERIES:
            times = []
            n = 0
            for i in range(REPEATS + 1):
                with desk.db.read() as s:  # a fresh short read transaction, as the console does
                    t0 = time.perf_counter()
                    n = len(search(s, desk, query, limit=20, **kw))
                    took = time.perf_counter() - t0
                if i:  # the first run warms the page cache and the statement cache
                    times.append(took)
            label = query + "".join(f" {k}={v}" for k, v in kw.items())
            out[f"search {label!r}"] = {
                "median_ms": _ms(statistics.median(times)), "max_ms": _ms(max(times)), "hits": n,
            }  # fmt: skip
        for query in ("принтер", "printer refund"):
            times = []
            for i in range(REPEATS + 1):
                with desk.db.read() as s:
                    t0 = time.perf_counter()
                    list_tickets(s, desk, query, limit=50)
                    took = time.perf_counter() - t0
                if i:
                    times.append(took)
            out[f"tickets list {query!r} (first 50)"] = {
                "median_ms": _ms(statistics.median(times)), "max_ms": _ms(max(times)),
            }  # fmt: skip
    finally:
        desk.close()
    return out


def commands(home: Path) -> dict[str, Any]:
    def median_of(args: list[str]) -> float:
        time_command(args)  # warm
        return _ms(statistics.median(time_command(args) for _ in range(COMMAND_REPEATS)))

    return {
        "python -c pass": median_of([PYTHON, "-c", "pass"]),
        "supportdesk --help": median_of(supportdesk(home, "--help")),
        "supportdesk search принтер --json": median_of(
            supportdesk(home, "search", "принтер", "--json")
        ),
        "supportdesk search printer": median_of(supportdesk(home, "search", "printer")),
    }


def run(home: Path, size: int = 100_000) -> dict[str, Any]:
    """All the figures (milliseconds): ``in_process`` per query (median and max of 15 warm
    runs), and ``commands`` (median wall time of 5)."""
    home = home.expanduser().resolve()
    doc: dict[str, Any] = {"home": str(home), "size": size}
    doc.update(ensure_demo(home, size))
    doc["in_process"] = in_process(home)
    doc["commands_ms"] = commands(home)
    return doc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.search_bench", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--home", type=Path, default=Path("/tmp/supportdesk-search-bench"))
    ap.add_argument("--size", type=int, default=100_000)
    args = ap.parse_args(argv)
    json.dump(run(args.home, args.size), sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
