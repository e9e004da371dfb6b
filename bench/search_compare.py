"""Search latency on the imported corpus beside `mu find` and `notmuch search`.

Three representative queries: a Russian word in a form that only a stemmer finds (the mails say
"принтер", the query says "принтера"), an English word, and a phrase. supportdesk is timed
in-process (the search service, warm, median of 20) and as whole commands (`tickets list WORDS`,
and `search` once that command exists; median of 5), mu and notmuch as whole commands (median of
5). Every command shows the first 20 results. Hit counts are given so a fast "nothing found" is
visible as such.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.common import NA, Section, median, ms, run, supportdesk, time_command
from bench.import_bench import Corpus

QUERIES = [
    ("Russian word, needs stemming", "принтера"),
    ("English word", "invoice"),
    ("Phrase", '"cannot log in"'),
]
IN_PROCESS_REPEATS = 20
COMMAND_REPEATS = 5


def _in_process(home: Path, query: str) -> tuple[float, int]:
    from supportdesk.desk.desk import open_desk
    from supportdesk.search.search import search
    from supportdesk.tickets.read import list_tickets

    desk = open_desk(home)
    try:
        with desk.db.read() as s:
            search(s, desk, query, limit=20)  # warm the page cache and the statement cache
        times = []
        for _ in range(IN_PROCESS_REPEATS):
            with desk.db.read() as s:
                t0 = time.perf_counter()
                search(s, desk, query, limit=20)
                times.append(time.perf_counter() - t0)
        with desk.db.read() as s:
            tickets = len(list_tickets(s, desk, query, limit=None))
        return median(times), tickets
    finally:
        desk.close()


def _command(args: list[str], env: dict[str, str] | None = None) -> float:
    run(args, env=env, check=False)  # warm-up
    return median(
        [time_command(args, env=env, check=False) for _ in range(COMMAND_REPEATS)]  # type: ignore[arg-type]
    )


def has_search_command(home: Path) -> bool:
    return run(supportdesk(home, "search", "--help"), check=False).returncode == 0


def run_search(corpus: Corpus, count: int) -> Section:
    sec = Section(f"Search (the same {count:,} messages)")
    assert corpus.home is not None
    search_cmd = has_search_command(corpus.home)
    for label, query in QUERIES:
        inproc, tickets = _in_process(corpus.home, query)
        listing = _command(supportdesk(corpus.home, "tickets", "list", query, "--json", "-n", "20"))
        ours = f"{ms(inproc)} in-process; `tickets list` {ms(listing)}"
        if search_cmd:
            whole = _command(supportdesk(corpus.home, "search", query, "--json"))
            ours += f"; `search` {ms(whole)}"
        ours += f" ({tickets} tickets)"
        mu = NA
        if corpus.muhome is not None:
            mu_args = ["mu", "find", f"--muhome={corpus.muhome}", query]
            took = _command([*mu_args[:3], "--maxnum=20", query])
            found = run(mu_args, check=False).stdout.count("\n")
            mu = f"{ms(took)} ({found} messages)"
        nm = NA
        if corpus.notmuch_config is not None:
            env = {"NOTMUCH_CONFIG": str(corpus.notmuch_config)}
            took = _command(["notmuch", "search", "--limit=20", query], env)
            found = int(run(["notmuch", "count", query], env=env).stdout.strip() or 0)
            nm = f"{ms(took)} ({found} messages)"
        sec.add(f"{label}: `{query}`", ours, mu, nm)
    if not search_cmd:
        sec.add(
            "`supportdesk search` as a command",
            "pending (the command is not in this build)",
        )
    return sec
