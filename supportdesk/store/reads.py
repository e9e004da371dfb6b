"""The SQL of the read commands (`tickets list`, `status`), written once and run two ways.

The full path runs it through a SQLAlchemy session (``store.db.session_run``) on SQLite and
PostgreSQL; the quick path of the command line runs it on a plain ``sqlite3`` connection
(``store.quick``) without importing SQLAlchemy, pydantic or the model classes, which is most of
a command's start-up. Either way a query is this module's text: there is no second copy.

A ``Run`` takes SQL with ``:name`` parameters (both sqlite3 and SQLAlchemy's ``text()`` read
them) and returns the rows as tuples. Times come back as the driver gives them (text on
SQLite, ``datetime`` on PostgreSQL); :func:`utc` makes them the aware UTC datetimes the model
classes hold.

This module imports nothing heavy: the quick path loads it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from supportdesk.core.terms import OPEN_STATUSES

Run = Callable[[str, dict[str, Any]], Sequence[Sequence[Any]]]

CHUNK = 500  # ids per IN (...) list

# The queue's order, hot first: urgent before low, then the nearest deadline (tickets with one
# first), then the newest. The index of migration 0004 (ix_ticket_queue) matches this.
QUEUE_ORDER = {
    "hot": "ticket.priority_rank DESC, ticket.due_at IS NULL, ticket.due_at ASC, ticket.id DESC",
    "newest": "ticket.id DESC",
    "updated": "ticket.updated_at DESC, ticket.id DESC",
}

# The ticket columns a queue row is made of (the attributes of the Ticket model of those names).
TICKET_COLUMNS = (
    "id", "subject", "status", "priority", "channel", "kind", "customer_id", "assignee_id",
    "group", "created_at", "updated_at", "due_at", "first_response_due_at", "resolution_due_at",
    "first_response_at", "solved_at", "snoozed_until", "sla_breached", "message_count",
    "csat_score",
)  # fmt: skip
_TIMES = {c for c in TICKET_COLUMNS if c.endswith("_at") or c == "snoozed_until"}

OPEN_STATUS_SQL = "(" + ", ".join(f"'{s}'" for s in OPEN_STATUSES) + ")"


def utc(value: Any) -> datetime | None:
    """A stored time as an aware UTC datetime (what the model's UTCDateTime gives)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC)


def _ids(prefix: str, ids: Sequence[int]) -> tuple[str, dict[str, Any]]:
    names = [f"{prefix}{i}" for i in range(len(ids))]
    return ", ".join(f":{n}" for n in names), dict(zip(names, ids, strict=True))


def _chunks(ids: Sequence[int]) -> list[Sequence[int]]:
    return [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)]


class TicketRow:
    """A ticket's queue columns read without the model classes: the same attribute names and
    value types as a ``Ticket`` (aware datetimes, a bool for ``sla_breached``)."""

    __slots__ = TICKET_COLUMNS

    def __init__(self, row: Sequence[Any]):
        for name, value in zip(TICKET_COLUMNS, row, strict=True):
            if name in _TIMES:
                value = utc(value)
            elif name == "sla_breached":
                value = bool(value)
            setattr(self, name, value)


def queue(run: Run, *, order: str = "hot", limit: int | None = 100) -> list[TicketRow]:
    """The whole queue (no query terms) in ``order``, at most ``limit`` tickets."""
    cols = ", ".join(f'ticket."{c}"' if c == "group" else f"ticket.{c}" for c in TICKET_COLUMNS)
    sql = f"SELECT {cols} FROM ticket ORDER BY {QUEUE_ORDER[order]}"
    params: dict[str, Any] = {}
    if limit is not None:
        sql += " LIMIT :limit"
        params["limit"] = limit
    return [TicketRow(r) for r in run(sql, params)]


def tags_of(run: Run, ticket_ids: Sequence[int]) -> dict[int, list[str]]:
    """Each ticket's tag names, sorted."""
    out: dict[int, list[str]] = defaultdict(list)
    for chunk in _chunks(list(ticket_ids)):
        marks, params = _ids("t", chunk)
        for tid, name in run(
            "SELECT ticket_tag.ticket_id, tag.name FROM ticket_tag "
            "JOIN tag ON tag.id = ticket_tag.tag_id "
            f"WHERE ticket_tag.ticket_id IN ({marks}) ORDER BY tag.name",
            params,
        ):
            out[tid].append(name)
    return out


def customer_cards(run: Run, customer_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Each customer's id, name and identities (kind, address, display), by id."""
    out: dict[int, dict[str, Any]] = {}
    for chunk in _chunks(sorted(set(customer_ids))):
        marks, params = _ids("c", chunk)
        for cid, name in run(f"SELECT id, name FROM customer WHERE id IN ({marks})", params):
            out[cid or 0] = {"id": cid, "name": name, "identities": []}
        for cid, kind, address, display in run(
            "SELECT customer_id, kind, address, display FROM identity "
            f"WHERE customer_id IN ({marks}) ORDER BY id",
            params,
        ):
            if cid in out:
                out[cid]["identities"].append(
                    {"kind": kind, "address": address, "display": display}
                )
    return out


def agent_names(run: Run, ids: Sequence[int]) -> dict[int, str]:
    """Agent names by id (0 and None are nobody)."""
    wanted = sorted({i for i in ids if i})
    out: dict[int, str] = {}
    for chunk in _chunks(wanted):
        marks, params = _ids("a", chunk)
        out.update(
            (aid or 0, name)
            for aid, name in run(f"SELECT id, name FROM agent WHERE id IN ({marks})", params)
        )
    return out


# --- status -------------------------------------------------------------------------------


def channel_states(run: Run) -> dict[str, dict[str, Any]]:
    """Every channel's poll record: last success, last error (time and text), failures."""
    return {
        ch: {
            "last_success_at": utc(ok),
            "last_error_at": utc(err_at),
            "last_error": err,
            "failures": failures,
        }
        for ch, ok, err_at, err, failures in run(
            "SELECT channel, last_success_at, last_error_at, last_error, failures "
            "FROM channel_state",
            {},
        )
    }


def outbox_counts(run: Run) -> dict[str, int]:
    """Outbox rows by state."""
    return {s: int(n) for s, n in run("SELECT state, count(*) FROM outbox GROUP BY state", {})}


def open_quarantine(run: Run) -> int:
    """Quarantined messages not yet resolved."""
    return int(run("SELECT count(*) FROM quarantine WHERE resolved_at IS NULL", {})[0][0])


def open_tickets(run: Run) -> int:
    """Tickets in an open status (new, open, pending)."""
    return int(run(f"SELECT count(*) FROM ticket WHERE status IN {OPEN_STATUS_SQL}", {})[0][0])


def lease(run: Run, name: str) -> dict[str, Any] | None:
    """The named lease (holder, pid, host, heartbeat, expiry), or None."""
    rows = run(
        "SELECT holder, pid, host, heartbeat_at, expires_at FROM lease WHERE name = :name",
        {"name": name},
    )
    if not rows:
        return None
    holder, pid, host, beat, expires = rows[0]
    return {
        "holder": holder,
        "pid": pid,
        "host": host,
        "heartbeat_at": utc(beat),
        "expires_at": utc(expires),
    }
