"""Automation: does a rule set slow intake? (issue 19's goal: within 10% of no rules)

A 100,000-ticket demo desk gets a Telegram channel pointed at the Bot API stand-in, then
one `supportdesk run` is measured on it: arrival latency (update pushed → ticket in the queue,
looked at every 10 ms from this process), arrivals alternating between no rules and 50 enabled
rules (ticket.created and message.in rules with query-language conditions, ten of them matching
and acting). Rules run
after the ingest commit in the automation worker, so intake should not notice them. The same
runs report how soon after its arrival a matching rule's change is visible.

    python -m bench.automation_bench [--quick]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from bench.channels_bench import TG_TOKEN_ENV, _runner, _telegram_config, _wait
from bench.common import Section, median, run, supportdesk

ARRIVALS = 15
WARMUP = 2
SIZE = 100_000
RULES = 50


def rules_text(n: int = RULES) -> str:
    """``n`` rules: one in five matches the bench's messages and tags the ticket."""
    out = []
    for i in range(n):
        acting = i % 5 == 0
        cond = (
            "channel:telegram автоматизация" if acting else f"channel:telegram нет-такого-слова{i}"
        )
        when = "ticket.created" if i % 2 == 0 else "message.in"
        out.append(
            f'[[rule]]\nname = "bench-{i}"\nwhen = "{when}"\nif = "{cond} -tag:bench{i}"\n'
            f'then = [{{ action = "tag", add = ["bench{i}"] }}, '
            f'{{ action = "priority", priority = "high" }}]\n'
        )
    return "\n".join(out)


def _newest(desk: Any) -> tuple[str, int] | None:
    from supportdesk.tickets.read import list_tickets

    with desk.db.read() as s:
        rows = list_tickets(s, desk, limit=1, order="newest")
    return (rows[0].subject, int(rows[0].id or 0)) if rows else None


def _tagged(desk: Any, tid: int) -> bool:
    from supportdesk.tickets.read import tags_of

    with desk.db.read() as s:
        return "bench0" in tags_of(s, [tid]).get(tid, [])


def _caught_up(desk: Any) -> bool:
    from sqlmodel import func, select

    from supportdesk.store.models import Event, Meta

    with desk.db.read() as s:
        row = s.get(Meta, "automation.cursor")
        last = s.exec(select(func.max(Event.id))).one() or 0
    return row is not None and int(row.value) >= int(last)


def _arrivals(home: Path, bot: Any) -> tuple[list[float], list[float], list[float]]:
    """One runner; arrivals alternate between no rules and 50 rules (the rule file moved in and
    out, which the runner notices by its modification stamp), so the machine's load drifts
    over both alike. Returns (no rules, rules, arrival → rule's change visible)."""
    from supportdesk.desk.desk import open_desk

    on, off = home / "rules" / "bench.toml", home / "bench-rules.toml.off"
    desk = open_desk(home, agent="bench")
    none: list[float] = []
    with_rules: list[float] = []
    acted: list[float] = []
    try:
        with _runner(home, {TG_TOKEN_ENV: bot.token}):
            bot.wait_polling(timeout=60)
            for i in range(-WARMUP, ARRIVALS):  # the first rounds warm the runner up: not counted
                for rules in (False, True):
                    if rules:
                        off.rename(on)
                    text = f"Автоматизация {int(rules)} {i} {time.time_ns()}"
                    chat = 91010 + 2 * i + int(rules)
                    t0 = time.perf_counter()
                    bot.push_message(chat, text, user={"id": chat, "first_name": f"U{i}"})
                    got = _wait(
                        lambda t=text: (_newest(desk) or ("", 0))[0] == t and _newest(desk),  # type: ignore[misc]
                        60,
                        "the Telegram message",
                    )
                    took = time.perf_counter() - t0
                    if i >= 0:
                        (with_rules if rules else none).append(took)
                    if rules:
                        _wait(lambda tid=got[1]: _tagged(desk, tid), 60, "the rule's tag")  # type: ignore[misc]
                        if i >= 0:
                            acted.append(time.perf_counter() - t0)
                        # arrivals are spaced: the next one comes when the worker has caught up
                        _wait(lambda: _caught_up(desk), 120, "the automation worker", every=0.05)
                        on.rename(off)
                    bot.wait_polling(timeout=60)
    finally:
        desk.close()
    return none, with_rules, acted


def run_automation(work: Path, size: int = SIZE, base: Path | None = None) -> Section:
    """``base``: a demo desk of ``size`` tickets already built (copied, not rebuilt)."""
    import shutil

    from tests.peers.botapi import BotAPIServer

    sec = Section("Automation (rules off the intake path)")
    home = work / "auto-desk"
    work.mkdir(parents=True, exist_ok=True)
    if base is not None:
        shutil.copytree(base, home, ignore=shutil.ignore_patterns("*.lock", "raw"))
    else:
        run(supportdesk(home, "demo", "--size", str(size), "--no-tui"), timeout=1800)
    bot = BotAPIServer().start()
    if bot._httpd is not None:  # a long poll cut short by stopping the runner is no error here
        bot._httpd.handle_error = lambda *_a: None  # type: ignore[method-assign]
    try:
        (home / "config.toml").write_text(_telegram_config(bot), encoding="utf-8")
        (home / "rules").mkdir(exist_ok=True)
        (home / "rules" / "bench.toml").write_text(rules_text(), encoding="utf-8")
        run(supportdesk(home, "rules", "check"))
        (home / "rules" / "bench.toml").rename(home / "bench-rules.toml.off")
        # automation switched on with no rules: the cursor starts at the demo's history
        run(supportdesk(home, "rules", "run"))
        none, with_rules, acted = _arrivals(home, bot)
    finally:
        bot.stop()
    a, b = median(none), median(with_rules)
    ratio = (b / a - 1) * 100 if a else 0.0
    sec.add(
        f"Telegram arrival on a {size:,}-ticket desk, no rules (median of {len(none)})",
        f"{a * 1000:.0f} ms",
    )
    sec.add(
        f"Same with {RULES} enabled rules (median of {len(with_rules)})",
        f"{b * 1000:.0f} ms ({ratio:+.0f}%)",
        note="goal: within 10% of no rules",
    )
    sec.add(
        "Arrival → a matching rule's change visible (median)",
        f"{median(acted) * 1000:.0f} ms",
        note="rules run after the ingest commit, in the automation worker",
    )
    return sec


def main(argv: list[str] | None = None) -> int:
    import tempfile

    global ARRIVALS
    args = argv if argv is not None else sys.argv[1:]
    size = SIZE
    if "--quick" in args:
        size, ARRIVALS = 10_000, 5
    work = Path(tempfile.mkdtemp(prefix="supportdesk-autobench-"))
    sec = run_automation(work, size)
    for r in sec.rows:
        print(f"{r.what}: {r.ours} {r.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
