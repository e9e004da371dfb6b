"""The SQL of the read commands (`tickets list`, `tickets show`, `status`), written once and run
two ways.

The full path runs it through a SQLAlchemy session (``store.db.session_run``) on SQLite and
PostgreSQL; the quick path of the command line runs it on a plain ``sqlite3`` connection
(``store.quick``) without importing SQLAlchemy, pydantic or the model classes, which is most of
a command's start-up. Either way a query is this module's text: there is no second copy.

A ``Run`` takes SQL with ``:name`` parameters (both sqlite3 and SQLAlchemy's ``text()`` read
them) and returns the rows as tuples. Times come back as the driver gives them (text on
SQLite, ``datetime`` on PostgreSQL); :func:`utc` makes them the aware UTC datetimes the model
classes hold.

This module imports nothing heavy: the quick path loads it.

Long because: every query of the quick read commands lives here, once, with the plain row classes
that stand in for the model classes on the quick path.
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


def sqlite_utc_text(value: datetime | None) -> str | None:
    """A UTCDateTime value as SQLAlchemy's SQLite dialect stores it (naive UTC, microseconds),
    without the two layers of processors: the same text, a third of the time (bulk writes)."""
    if value is None:
        return None
    tz = value.tzinfo
    if tz is not None and tz is not UTC:
        value = value.astimezone(UTC)
    # isoformat(" ", "microseconds") without the offset, in half the time (an import converts
    # several times per message; tests/store/test_utc_text.py checks it against isoformat)
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


def _ids(prefix: str, ids: Sequence[int]) -> tuple[str, dict[str, Any]]:
    names = [f"{prefix}{i}" for i in range(len(ids))]
    return ", ".join(f":{n}" for n in names), dict(zip(names, ids, strict=True))


def _chunks(ids: Sequence[int]) -> list[Sequence[int]]:
    return [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)]


class TicketRow:
    """A ticket's queue columns read without the model classes: the same attribute names and
    value types as a ``Ticket`` (aware datetimes, a bool for ``sla_breached``)."""

    __slots__ = TICKET_COLUMNS
    id: int
    subject: str
    status: str
    priority: str
    channel: str
    kind: str
    customer_id: int
    assignee_id: int | None
    group: str | None
    created_at: datetime
    updated_at: datetime
    due_at: datetime | None
    first_response_due_at: datetime | None
    resolution_due_at: datetime | None
    first_response_at: datetime | None
    solved_at: datetime | None
    snoozed_until: datetime | None
    sla_breached: bool
    message_count: int
    csat_score: int | None

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


# --- tickets show -------------------------------------------------------------------------

# The columns of a message in a ticket's thread (the attributes of the Message model of those
# names; ``stored`` and the booleans are read as Python values by MessageRow).
MESSAGE_COLUMNS = (
    "id", "direction", "channel", "kind", "author", "author_address", "subject", "text",
    "quoted_text", "created_at", "thread_reason", "to_addresses", "cc_addresses",
    "bcc_addresses", "html", "message_id", "edited_at", "versions", "is_auto",
)  # fmt: skip


class ShownTicket(TicketRow):
    """A ticket's queue columns and what `tickets show` adds to them."""

    __slots__ = ("reply_to_address", "csat_comment")
    reply_to_address: str
    csat_comment: str | None


def ticket(run: Run, ticket_id: int) -> ShownTicket | None:
    """One ticket for `tickets show`, or None when there is no such ticket."""
    cols = ", ".join(f'ticket."{c}"' if c == "group" else f"ticket.{c}" for c in TICKET_COLUMNS)
    rows = run(
        f"SELECT {cols}, ticket.reply_to_address, ticket.csat_comment FROM ticket "
        "WHERE ticket.id = :id",
        {"id": ticket_id},
    )
    if not rows:
        return None
    row = rows[0]
    n = len(TICKET_COLUMNS)
    t = ShownTicket(row[:n])
    t.reply_to_address, t.csat_comment = row[n], row[n + 1]
    return t


class MessageRow:
    """A message of a thread read without the model classes (the Message attribute names)."""

    __slots__ = MESSAGE_COLUMNS
    id: int
    direction: str
    channel: str
    kind: str
    author: str
    author_address: str
    subject: str
    text: str
    quoted_text: str
    created_at: datetime
    thread_reason: str
    to_addresses: str
    cc_addresses: str
    bcc_addresses: str
    html: str | None
    message_id: str | None
    edited_at: datetime | None
    versions: str
    is_auto: bool

    def __init__(self, row: Sequence[Any]):
        for name, value in zip(MESSAGE_COLUMNS, row, strict=True):
            if name in ("created_at", "edited_at"):
                value = utc(value)
            elif name == "is_auto":
                value = bool(value)
            setattr(self, name, value)


def thread(run: Run, ticket_id: int) -> list[MessageRow]:
    """A ticket's messages, oldest first."""
    cols = ", ".join(f"message.{c}" for c in MESSAGE_COLUMNS)
    return [
        MessageRow(r)
        for r in run(
            f"SELECT {cols} FROM message WHERE message.ticket_id = :ticket_id "
            "ORDER BY message.created_at, message.id",
            {"ticket_id": ticket_id},
        )
    ]


def attachments_of(run: Run, message_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """Each message's attachments (id, filename, size, content_type, stored, note), in order."""
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for chunk in _chunks(list(message_ids)):
        marks, params = _ids("m", chunk)
        for aid, mid, filename, size, ctype, stored, note in run(
            "SELECT id, message_id, filename, size, content_type, stored_path, note "
            f"FROM attachment WHERE message_id IN ({marks}) ORDER BY id",
            params,
        ):
            out[mid or 0].append(
                {
                    "id": aid,
                    "filename": filename,
                    "size": size,
                    "content_type": ctype,
                    "stored": stored is not None,
                    "note": note,
                }
            )
    return out


def deliveries(run: Run, message_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The outbox row of each message (id, state, attempts, last_error); the newest when a
    message has several."""
    out: dict[int, dict[str, Any]] = {}
    for chunk in _chunks(list(message_ids)):
        marks, params = _ids("m", chunk)
        for oid, mid, state, attempts, error in run(
            "SELECT id, message_id, state, attempts, last_error "
            f"FROM outbox WHERE message_id IN ({marks}) ORDER BY id",
            params,
        ):
            if mid is not None:
                out[mid] = {"id": oid, "state": state, "attempts": attempts, "last_error": error}
    return out


def customer_details(run: Run, customer_id: int) -> dict[str, Any] | None:
    """A customer's company, phone, language and notes; None when there is no such customer."""
    rows = run(
        "SELECT company, phone, language, notes FROM customer WHERE id = :id", {"id": customer_id}
    )
    if not rows:
        return None
    company, phone, language, notes = rows[0]
    return {"company": company, "phone": phone, "language": language, "notes": notes}


def customer_root(run: Run, customer_id: int) -> int:
    """The customer that ``customer_id`` was merged into, following merges to the end;
    LookupError when there is no such customer."""
    seen: set[int] = set()
    rows = run("SELECT id, merged_into_id FROM customer WHERE id = :id", {"id": customer_id})
    if not rows:
        raise LookupError(f"customer {customer_id} does not exist")
    cid, into = rows[0]
    while into and cid not in seen:
        seen.add(cid or 0)
        nxt = run("SELECT id, merged_into_id FROM customer WHERE id = :id", {"id": into})
        if not nxt:
            break
        cid, into = nxt[0]
    return int(cid)


def customer_family(run: Run, customer_id: int) -> set[int]:
    """The customer behind ``customer_id`` and every customer merged into it (at any depth)."""
    root = customer_root(run, customer_id)
    ids = {root}
    frontier = [root]
    while frontier:
        found: list[int] = []
        for chunk in _chunks(frontier):
            marks, params = _ids("c", chunk)
            found += [
                r[0]
                for r in run(f"SELECT id FROM customer WHERE merged_into_id IN ({marks})", params)
            ]
        frontier = [r for r in found if r not in ids]
        ids.update(frontier)
    return ids


class HistoryRow:
    """A ticket in a customer's history (the Ticket attribute names)."""

    __slots__ = ("id", "channel", "kind", "subject", "status", "created_at", "customer_id")

    def __init__(self, row: Sequence[Any]):
        self.id, self.channel, self.kind, self.subject, self.status = row[:5]
        self.created_at, self.customer_id = utc(row[5]), row[6]


def customer_history(run: Run, customer_id: int, exclude: int | None = None) -> list[HistoryRow]:
    """Every ticket of the customer (and of customers merged into them), newest first."""
    out: list[HistoryRow] = []
    chunks = _chunks(sorted(customer_family(run, customer_id)))
    for chunk in chunks:
        marks, params = _ids("c", chunk)
        out += [
            HistoryRow(r)
            for r in run(
                "SELECT id, channel, kind, subject, status, created_at, customer_id FROM ticket "
                f"WHERE customer_id IN ({marks}) ORDER BY created_at DESC",
                params,
            )
        ]
    if len(chunks) > 1:  # several chunks: one order over all of them
        out.sort(key=lambda h: h.created_at or datetime.min.replace(tzinfo=UTC), reverse=True)
    return [h for h in out if h.id != exclude]


def participant_rows(run: Run, ticket_id: int) -> list[tuple[str, str, str, str]]:
    """(direction, author_address, to_addresses, cc_addresses) of a ticket's inbound and
    outbound messages (notes left out), oldest first: who is on the thread."""
    return [
        (d, a, t, c)
        for d, a, t, c in run(
            "SELECT direction, author_address, to_addresses, cc_addresses FROM message "
            "WHERE ticket_id = :ticket_id AND direction IN ('in', 'out') "
            "ORDER BY created_at, id",
            {"ticket_id": ticket_id},
        )
    ]
