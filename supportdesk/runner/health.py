"""The `status` document (channels, runner, outbox and quarantine sizes, open tickets) from the
store's SQL, shared by the full path and the command line's quick path. Imports nothing heavy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from supportdesk.core.terms import utcnow
from supportdesk.core.text import iso
from supportdesk.store import reads
from supportdesk.store.reads import Run

OUTBOX_STATES = ("queued", "sending", "sent", "failed", "cancelled", "in_doubt", "dropped")


def status_doc(run: Run, desk_name: str, channels: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The desk's health; ``channels`` are the configured (name, type) pairs."""
    now = utcnow()
    states = reads.channel_states(run)
    counts = reads.outbox_counts(run)
    quarantined = reads.open_quarantine(run)
    open_count = reads.open_tickets(run)
    lease = reads.lease(run, "runner")
    out = []
    for name, type_ in channels:
        st = states.get(name)
        if st is None:
            state = "never polled"
        elif st["last_error_at"] and (
            st["last_success_at"] is None or st["last_error_at"] > st["last_success_at"]
        ):
            state = "error"
        else:
            state = "ok"
        out.append(
            {
                "name": name,
                "type": type_,
                "state": state,
                "last_success_at": iso(st["last_success_at"]) if st else None,
                "last_error_at": iso(st["last_error_at"]) if st else None,
                "last_error": (st["last_error"] or None) if st else None,
                "failures": st["failures"] if st else 0,
            }
        )
    runner = None
    if lease is not None and lease["expires_at"] and lease["expires_at"] > now:
        runner = {
            "holder": lease["holder"],
            "pid": lease["pid"],
            "host": lease["host"],
            "heartbeat_at": iso(lease["heartbeat_at"]),
        }
    return {
        "desk": desk_name,
        "channels": out,
        "runner": runner,
        "outbox": {k: int(counts.get(k, 0)) for k in OUTBOX_STATES},
        "quarantine": int(quarantined),
        "tickets": {"open": int(open_count)},
    }
