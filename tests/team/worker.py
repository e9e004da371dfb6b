"""One agent's process for the concurrency test: triage changes as fast as it can.

``python -m tests.team.worker HOME AGENT ROUNDS TICKET...`` (the database URL, if not SQLite,
comes from SUPPORTDESK_DB). Prints one JSON document: what it did and every error it met.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path


def main(argv: list[str]) -> int:
    from supportdesk.desk.desk import open_desk
    from supportdesk.tickets import replying, triage

    home, agent, rounds = Path(argv[0]), argv[1], int(argv[2])
    tickets = [int(x) for x in argv[3:]]
    desk = open_desk(home, agent=agent, db_url=os.environ.get("SUPPORTDESK_DB") or None)
    done: list[dict[str, object]] = []
    errors: list[str] = []
    for i in range(rounds):
        t = tickets[(i + len(agent)) % len(tickets)]
        label = f"{agent}-{i}"
        for kind in ("tag", "note", "assign", "priority"):
            try:
                if kind == "tag":
                    triage.tag(desk, [t], add=[label])
                elif kind == "note":
                    replying.reply(desk, t, text=f"note {label}", note=True)
                elif kind == "assign":
                    triage.assign(desk, [t], "me")
                else:
                    triage.set_fields(desk, [t], priority="high")
                done.append({"kind": kind, "ticket": t, "label": label})
            except Exception as exc:  # every error is a failure of the test: report it
                errors.append(f"{kind} {label}: {type(exc).__name__}: {exc}")
                traceback.print_exc()
    desk.close()
    json.dump({"agent": agent, "done": done, "errors": errors}, sys.stdout)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
