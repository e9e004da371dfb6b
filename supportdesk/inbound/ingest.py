"""Ingest: dedupe -> identity -> threading -> ticket/message, in the caller's transaction.

Every inbound message records why it joined its ticket (``thread_reason``).

One code path serves a single live message and an import of thousands: ``ingest_many`` looks
up everything a batch needs in a handful of queries (known Message-IDs, identities, tickets),
threads the messages in memory (a reply may follow its question within the same batch), then
writes tickets, messages, events and the search index in a few bulk statements.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import Session, col, select

from supportdesk.channels.base import InboundMessage
from supportdesk.channels.email.subject import ticket_title, ticket_token
from supportdesk.desk import audit as events
from supportdesk.desk.desk import Desk
from supportdesk.desk.identity import normalize_address, normalize_email
from supportdesk.sla import clocks as sla
from supportdesk.sla import priority as priority_rules
from supportdesk.store.files import StorageError, sha256_hex, store_attachment
from supportdesk.store.merges import follow_merges, merged_into
from supportdesk.store.models import (
    OPEN_STATUSES,
    AttachmentRow,
    Customer,
    Event,
    Identity,
    Message,
    Outbox,
    Quarantine,
    Ticket,
    UTCDateTime,
    utcnow,
)

Outcome = Literal["new_ticket", "joined", "duplicate", "updated", "outbound", "bounce", "ignored"]

CHUNK = 500

# Messenger-like kinds: one open conversation per customer and channel is the thread (no
# subjects, no Message-ID references); the conversation's address is where replies go.
CHAT_KINDS = frozenset({"telegram", "web"})


@dataclass
class IngestResult:
    outcome: Outcome
    ticket_id: int | None = None
    message_id: int | None = None
    customer_id: int | None = None
    reason: str = ""
    needs_ack: bool = False
    is_start: bool = False


def _telegram_subject(msg: InboundMessage) -> str:
    first = (msg.text or "").strip().splitlines()[0] if (msg.text or "").strip() else ""
    if not first and msg.attachments:
        first = "(" + ", ".join(a.filename for a in msg.attachments[:3]) + ")"
    first = first or "(no text)"
    return first[:80] + ("…" if len(first) > 80 else "")


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def _address_list(addresses: list[str]) -> str:
    """At most 50 addresses, space-separated, without blanks or duplicates (hostile headers)."""
    seen = dict.fromkeys(a.strip() for a in addresses[:50] if a and " " not in a.strip())
    return " ".join(a for a in seen if a)[:4000]


class _Row:
    """A new row as a plain object: what SQLModel would hold, without its per-attribute cost.

    Priority rules and SLA clocks read and set the same attribute names on it as on a model
    instance; the batch inserts it with one bulk statement.
    """

    id: int | None

    def __init__(self, model: Any, **values: Any) -> None:
        fixed, factories = _defaults(model)
        d = self.__dict__
        d.update(fixed)
        for name, factory in factories:
            if name not in values:
                d[name] = factory()
        d.update(values)

    def values(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "id"}


_DEFAULTS: dict[Any, tuple[dict[str, Any], list[tuple[str, Any]]]] = {}


def _defaults(model: Any) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """A model's plain defaults, and the fields whose default is made by a function."""
    got = _DEFAULTS.get(model)
    if got is None:
        fixed: dict[str, Any] = {}
        factories: list[tuple[str, Any]] = []
        for name, info in model.model_fields.items():
            if info.default_factory is not None:
                factories.append((name, info.default_factory))
            else:
                fixed[name] = None if info.default is ... else info.default
        got = _DEFAULTS[model] = (fixed, factories)
    return got


class _Known:
    """An existing customer as a batch reads it (not an object the session tracks)."""

    def __init__(self, ident: int, name: str, merged_into_id: int | None) -> None:
        self.id = ident
        self.name = name
        self.merged_into_id = merged_into_id


def _allocate_ids(conn: Any, model: Any, rows: Sequence[Any]) -> bool:
    """Give each new row its id before anything is inserted; False where the backend can't.

    On SQLite the writer holds the database lock (BEGIN IMMEDIATE), so max(id)+1... is safe;
    on PostgreSQL the ids come from the table's sequence.
    """
    if not rows:
        return True
    table = model.__table__
    dialect = conn.dialect.name
    if dialect == "sqlite":
        start = (conn.execute(sa.select(sa.func.max(table.c.id))).scalar() or 0) + 1
        ids: Iterable[int] = range(start, start + len(rows))
    elif dialect == "postgresql":
        seq = conn.execute(
            sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table.name}
        ).scalar()
        ids = list(
            conn.execute(
                sa.text("SELECT nextval(:s) FROM generate_series(1, :n)"),
                {"s": seq, "n": len(rows)},
            ).scalars()
        )
    else:
        return False
    for r, new_id in zip(rows, ids, strict=True):
        r.id = new_id
    return True


def _write_rows(conn: Any, model: Any, rows: Sequence[Any]) -> None:
    """Insert rows (``_Row`` objects or dicts) that already have their ids, or need none."""
    if not rows:
        return
    table = model.__table__
    if conn.dialect.name == "sqlite":
        _sqlite_executemany(conn, table, rows)
        return
    for chunk in _chunks(rows):
        conn.execute(sa.insert(table), [r if isinstance(r, dict) else r.__dict__ for r in chunk])


def _insert_rows(conn: Any, model: Any, rows: list[_Row]) -> None:
    """Insert new rows and give each its id (allocated up front where the backend allows)."""
    if not rows:
        return
    if _allocate_ids(conn, model, rows):
        _write_rows(conn, model, rows)
        return
    table = model.__table__
    for chunk in _chunks(rows):  # elsewhere: ask for the ids back (row by row, slower)
        stmt = sa.insert(table).returning(table.c.id, sort_by_parameter_order=True)
        got = conn.execute(stmt, [r.values() for r in chunk]).scalars().all()
        for r, new_id in zip(chunk, got, strict=True):
            r.id = new_id


_INSERTS: dict[tuple[str, frozenset[str] | None], tuple[str, Any, list[tuple[int, Any]]]] = {}


def _sqlite_executemany(conn: Any, table: Any, rows: Sequence[Any]) -> None:
    """One DB-API executemany with SQLAlchemy's own bind processors (same stored formats),
    without building a parameter dictionary per row through the SQL compiler.

    Dict rows name only the columns they set (an event has no id: SQLite assigns it). The
    values are picked in one C call; only the columns that need converting (times) are touched
    again, and only when they hold a value.
    """
    first = rows[0]
    only = frozenset(first) if isinstance(first, dict) else None
    key = (table.name, only)
    plan = _INSERTS.get(key)
    if plan is None:
        cols = [c for c in table.columns if only is None or c.name in only]
        names = ", ".join(f'"{c.name}"' for c in cols)
        sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({", ".join("?" for _ in cols)})'
        column_names = [c.name for c in cols]
        pick = (
            operator.itemgetter(*column_names)
            if len(column_names) > 1
            else lambda d: (d[column_names[0]],)
        )
        convert = [
            (i, proc)
            for i, c in enumerate(cols)
            if (proc := _bind_processor(c, conn.dialect)) is not None
            and not isinstance(c.type, sa.Boolean)  # sqlite3 stores a bool as 0/1 itself
        ]
        plan = (sql, pick, convert)
        _INSERTS[key] = plan
    sql, pick, convert = plan
    data = []
    done: dict[Any, Any] = {}  # a batch repeats its times (now, each message's date): once each
    for r in rows:
        vals = pick(r if isinstance(r, dict) else r.__dict__)
        if convert:
            vals = list(vals)
            for i, proc in convert:
                v = vals[i]
                if v is None:
                    continue
                if proc is _utc_text:
                    got = done.get(v)
                    if got is None:
                        got = done[v] = proc(v)
                    vals[i] = got
                else:
                    vals[i] = proc(v)
        data.append(vals)
    conn.connection.driver_connection.executemany(sql, data)


def _utc_text(value: datetime | None) -> str | None:
    """UTCDateTime as SQLAlchemy's SQLite dialect stores it (naive UTC, microseconds), without
    the two layers of processors: the same text, a third of the time."""
    if value is None:
        return None
    tz = value.tzinfo
    if tz is UTC:
        return value.isoformat(" ", "microseconds")[:26]  # without the "+00:00"
    if tz is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


def _bind_processor(column: Any, dialect: Any) -> Any:
    """The column's processor as SQLAlchemy would apply it for this dialect."""
    if isinstance(column.type, UTCDateTime) and dialect.name == "sqlite":
        return _utc_text
    return column.type.dialect_impl(dialect).bind_processor(dialect)


def _later(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a


@dataclass
class _Placed:
    """What the batch decided for one message before anything is written."""

    msg: InboundMessage
    raw_sha256: str | None
    sent_at: datetime
    outbound: bool
    customer: Any
    ticket: Any
    created: bool
    reason: str
    message: Any = None
    reopened: bool = False
    rating: bool = False
    att_names: list[str] = field(default_factory=list)


class _Batch:
    def __init__(self, session: Session, desk: Desk, *, historical: bool, now: datetime):
        self.s = session
        self.desk = desk
        self.historical = historical
        self.now = now
        self.own = desk.own_addresses
        self.clock = sla.Deadlines(desk.config)
        self.results: list[IngestResult | None] = []
        self.placed: list[tuple[int, _Placed]] = []
        self.events: list[tuple[str, dict[str, Any], Any, Any, dict[str, Any]]] = []
        self.by_msgid: dict[str, Ticket] = {}  # Message-ID -> ticket, known and in this batch
        # (kind, normalized address) -> a new customer (_Row) or an existing one (_Known)
        self.customers: dict[tuple[str, str], Any] = {}
        self.new_customers: list[tuple[Customer, Identity]] = []
        self.all_new_customers: list[tuple[Customer, Identity]] = []  # for the search index
        self.renamed: dict[int, Any] = {}  # existing customers whose name ingest set
        self.tickets: dict[int, Ticket] = {}
        self.open_chats: dict[tuple[int, str], Ticket] = {}
        self.new_tickets: list[Ticket] = []
        self.seen_keys: set[str] = set()
        self.stems: dict[int, tuple[str, str, str]] = {}  # by position in the batch
        self._keys: dict[int, tuple[str, str]] = {}  # id(message) -> its customer key
        self._titled: set[int] = set()  # id(ticket) of new tickets titled from the subject

    # ---- look-ups for the whole batch ------------------------------------------------------
    def prefetch(self, msgs: Sequence[InboundMessage]) -> dict[str, tuple[int, int]]:
        s = self.s
        keys = list({m.dedupe_key for m in msgs})
        existing: dict[str, tuple[int, int]] = {}  # dedupe key -> (message id, ticket id)
        for chunk in _chunks(keys):
            for dkey, msg_pk, msg_ticket in s.exec(
                select(Message.dedupe_key, Message.id, Message.ticket_id).where(
                    col(Message.dedupe_key).in_(chunk)
                )
            ).all():
                existing[dkey or ""] = (msg_pk or 0, msg_ticket)
        refs: set[str] = set()
        for m in msgs:
            if m.kind == "email":
                refs.update(i for i in m.references[-100:] if i)
                refs.update(i for i in m.in_reply_to if i)
                refs.update(i for i in m.bounce_of if i)
        ticket_ids: set[int] = set()
        known: dict[str, int] = {}
        for chunk in _chunks(sorted(refs)):
            for mid, tid in s.exec(
                select(Message.message_id, Message.ticket_id).where(
                    col(Message.message_id).in_(chunk)
                )
            ).all():
                if mid:
                    known[mid] = tid
                    ticket_ids.add(tid)
        for m in msgs:
            n = ticket_token(m.subject) if m.kind == "email" else None
            if n is not None:
                ticket_ids.add(n)
        self._load_tickets(ticket_ids)
        for mid, tid in known.items():
            t = self._ticket(tid)
            if t is not None:
                self.by_msgid[mid] = t
        addrs: set[tuple[str, str]] = set()
        for m in msgs:
            kind, addr = self._customer_key(m)
            addrs.add((kind, addr))
        by_kind: dict[str, list[str]] = {}
        for kind, addr in addrs:
            by_kind.setdefault(kind, []).append(addr)
        cust_ids: dict[tuple[str, str], int] = {}
        for kind, lst in by_kind.items():
            for chunk in _chunks(lst):
                for address, customer_id in s.exec(
                    select(Identity.address, Identity.customer_id).where(
                        Identity.kind == kind, col(Identity.address).in_(chunk)
                    )
                ).all():
                    cust_ids[(kind, address)] = customer_id
        loaded: dict[int, Any] = {}
        pending = set(cust_ids.values())
        while pending:
            batch = [i for i in pending if i not in loaded]
            pending = set()
            for chunk in _chunks(batch):
                # the three columns ingest reads, not whole tracked objects (a tenth of the cost)
                cq = select(Customer.id, Customer.name, Customer.merged_into_id)
                for cid, cname, merged in s.exec(cq.where(col(Customer.id).in_(chunk))).all():
                    loaded[cid or 0] = _Known(cid or 0, cname, merged)
                    if merged and merged not in loaded:
                        pending.add(merged)
        for key, cid in cust_ids.items():
            c: Any = loaded.get(cid)
            seen: set[int] = set()
            while c is not None and c.merged_into_id and c.id not in seen:
                seen.add(c.id or 0)
                c = loaded.get(c.merged_into_id, c)
                if c.id in seen:
                    break
            if c is not None:
                self.customers[key] = c
        tg = [
            (c.id, m.channel)
            for m in msgs
            if m.kind in CHAT_KINDS
            for c in [self.customers.get(self._customer_key(m))]
            if c is not None
        ]
        if tg:
            cids = sorted({cid for cid, _ch in tg if cid})
            for chunk in _chunks(cids):
                q = (
                    select(Ticket)
                    .where(col(Ticket.customer_id).in_(chunk))
                    .where(col(Ticket.status).in_(OPEN_STATUSES + ("solved",)))
                    .order_by(col(Ticket.id))
                )
                for t in s.exec(q).all():
                    self.tickets[t.id or 0] = t
                    self.open_chats[(t.customer_id, t.channel)] = t  # the newest wins
        return existing

    def _load_tickets(self, ids: set[int]) -> None:
        want = sorted(i for i in ids if i not in self.tickets)
        for chunk in _chunks(want):
            for t in self.s.exec(select(Ticket).where(col(Ticket.id).in_(chunk))).all():
                self.tickets[t.id or 0] = t

    def _ticket(self, tid: int) -> Ticket | None:
        t = self.tickets.get(tid)
        if t is None:
            t = self.s.get(Ticket, tid)
            if t is not None:
                self.tickets[tid] = t
        if t is not None and t.status == "closed" and merged_into(t) is not None:
            t = follow_merges(self.s, t)
            if t is not None:
                self.tickets[t.id or 0] = t
        return t

    def _customer_key(self, m: InboundMessage) -> tuple[str, str]:
        """(kind, normalized address) of the customer a message is about (worked out once)."""
        key = self._keys.get(id(m))
        if key is None:
            key = self._keys[id(m)] = self._work_out_customer_key(m)
        return key

    def _work_out_customer_key(self, m: InboundMessage) -> tuple[str, str]:
        if m.kind == "email":
            if normalize_email(m.sender_address) in self.own:
                others = [
                    a
                    for a in (m.to_addresses + m.cc_addresses)
                    if normalize_email(a) not in self.own
                ]
                return "email", normalize_email(others[0] if others else m.sender_address)
            return "email", normalize_email(m.sender_address)
        return m.kind, normalize_address(m.kind, m.sender_address)

    def customer_for(self, m: InboundMessage, *, outbound: bool) -> Customer:
        key = self._customer_key(m)
        name = "" if outbound else (m.sender_name or "")
        display = ""
        if m.kind == "telegram" and m.extra.get("username"):
            display = "@" + str(m.extra["username"])
        cust = self.customers.get(key)
        if cust is not None:
            if name and cust.name in ("", "Website visitor") and isinstance(cust, _Known):
                cust.name = name  # written by write(), with the search index
                self.renamed[int(cust.id)] = cust
            return cust
        kind, addr = key
        row = _Row(
            Customer,
            id=None,
            name=name
            or (
                addr.split("@")[0]
                if kind == "email"
                else "Website visitor"
                if kind == "web"
                else addr
            ),
            created_at=self.now,
            updated_at=self.now,
        )
        ident = _Row(
            Identity,
            id=None,
            customer_id=0,
            kind=kind,
            address=addr,
            display=display or name,
            created_at=self.now,
        )
        self.customers[key] = row  # type: ignore[assignment]
        self.new_customers.append((row, ident))  # type: ignore[arg-type]
        self.all_new_customers.append((row, ident))  # type: ignore[arg-type]
        return row  # type: ignore[return-value]

    # ---- one message -----------------------------------------------------------------------
    def place(
        self, i: int, msg: InboundMessage, raw_sha: str | None, existing: dict[str, tuple[int, int]]
    ) -> None:
        s, now = self.s, self.now
        key = msg.dedupe_key
        known = existing.get(key)
        if known is not None:
            old = s.get(Message, known[0]) if msg.edited else None
            if old is not None and msg.text != old.text:
                self.results.append(self._edit(old, msg))
            else:
                self.results.append(
                    IngestResult("duplicate", known[1], known[0], reason="duplicate")
                )
            return
        if key in self.seen_keys:
            self.results.append(IngestResult("duplicate", reason="duplicate"))
            return
        self.seen_keys.add(key)
        kind = msg.kind
        outbound = kind == "email" and normalize_email(msg.sender_address) in self.own
        sent_at = msg.sent_at or now
        if not self.historical and sent_at > now:
            sent_at = now

        words = (msg.text or "").split()
        if (
            kind == "telegram"
            and msg.extra.get("is_start")
            and len(words) <= 2
            and not msg.attachments
        ):
            cust = self.customer_for(msg, outbound=False)
            self._flush_customers()
            self.results.append(
                IngestResult("ignored", customer_id=cust.id, reason="/start", is_start=True)
            )
            return

        if kind == "email" and msg.bounce_of:
            for ref in reversed(msg.bounce_of):
                t = self.by_msgid.get(ref)
                if t is not None and t.id is not None:
                    self.results.append(self._bounce(t, ref, msg, raw_sha, sent_at))
                    return

        cust = self.customer_for(msg, outbound=outbound)
        ticket: Ticket | None = None
        reason = ""
        if kind == "email":
            refs = list(msg.references)
            refs += [r for r in msg.in_reply_to if r not in refs]
            for ref in reversed(refs[-100:]):  # the nearest ancestor first
                t = self.by_msgid.get(ref)
                if t is not None:
                    ticket = t
                    which = "In-Reply-To" if ref in msg.in_reply_to else "References"
                    reason = f"{which} <{ref}>"
                    break
            if ticket is None:
                n = ticket_token(msg.subject)
                if n is not None:
                    cand = self._ticket(n)
                    if cand is not None and cust.id is not None and cand.customer_id == cust.id:
                        ticket, reason = cand, f"[#{n}] token in the subject"
        elif kind in CHAT_KINDS:
            t = self.open_chats.get((cust.id or -id(cust), msg.channel))
            if t is not None and t.status in OPEN_STATUSES + ("solved",):
                what = "Telegram chat" if kind == "telegram" else "website chat"
                ticket, reason = t, f"open {what}"
        if ticket is not None and ticket.status == "closed":
            reason = f"new ticket (#{ticket.id} is closed)"
            ticket = None
        created = ticket is None
        if ticket is None:
            ticket = self._new_ticket(msg, cust, sent_at, outbound)
            reason = reason or "new ticket"
        page = msg.extra.get("page") if kind == "web" else None
        if page and isinstance(page, str):
            reason = f"{reason}; the visitor is on {page[:300]}"  # shown beside the message
        placed = _Placed(msg, raw_sha, sent_at, outbound, cust, ticket, created, reason)

        if (
            not outbound
            and not created
            and ticket.csat_requested_at is not None
            and ticket.csat_score is None
        ):
            from supportdesk.replies import csat

            # "5" (or "4 thanks") answering the survey: a rating, not a reason to reopen
            placed.rating = bool(
                csat.maybe_rating_reply(s, self.desk, ticket, msg.text, at=sent_at)
            )
        self._apply_to_ticket(placed)
        if msg.external_id and kind == "email":
            self.by_msgid[msg.external_id] = ticket
        if kind in CHAT_KINDS:
            self.open_chats[(cust.id or -id(cust), msg.channel)] = ticket
        self.placed.append((i, placed))
        self.results.append(None)

    def _new_ticket(
        self, msg: InboundMessage, cust: Customer, sent_at: datetime, outbound: bool
    ) -> Ticket:
        titled = (
            msg.kind not in CHAT_KINDS
        )  # the title is ticket_title(subject), as stems_of has it
        if msg.kind in CHAT_KINDS:
            subject = _telegram_subject(msg)
            reply_to = str(msg.extra.get("chat_id") or msg.sender_address)
        else:
            subject = ticket_title(msg.subject)
            reply_to = self._customer_key(msg)[1]
        ticket: Any = _Row(
            Ticket,
            id=None,
            subject=subject[:300],
            status="new",
            channel=msg.channel,
            kind=msg.kind,
            customer_id=cust.id or 0,
            created_at=sent_at,
            updated_at=sent_at,
            reply_to_address=reply_to,
        )
        priority_rules.apply_to_new(
            self.desk, ticket, self._customer_key(msg)[1] if outbound else msg.sender_address
        )
        if self.historical and outbound:
            ticket.status = "open"
        self.clock.apply_due_times(ticket)
        self.new_tickets.append(ticket)
        if titled:
            self._titled.add(id(ticket))
        return ticket

    def _apply_to_ticket(self, p: _Placed) -> None:
        t = p.ticket
        t.message_count += 1
        if p.sent_at > t.updated_at:
            t.updated_at = p.sent_at
        if p.outbound:
            t.last_agent_at = _later(t.last_agent_at, p.sent_at)
            if (
                t.first_response_at is None or p.sent_at < t.first_response_at
            ) and p.sent_at >= t.created_at:
                t.first_response_at = p.sent_at
            if t.status == "new":
                t.status = "open"
        else:
            t.last_customer_at = _later(t.last_customer_at, p.sent_at)
            if not p.created and t.snoozed_until is not None and t.snoozed_until > p.sent_at:
                # the customer wrote again: a snoozed ticket comes back to the queue now
                self.events.append(
                    (
                        "woke",
                        {"agent": "system", "at": p.sent_at},
                        t,
                        None,
                        {"before": t.snoozed_until, "after": None, "why": "customer replied"},
                    )
                )
                t.snoozed_until = None
            if not p.created and not p.rating and t.status in ("pending", "solved"):
                before = t.status
                t.status = "open"
                p.reopened = True
                if before == "solved":
                    t.solved_at = None
                self.events.append(
                    (
                        "status",
                        {"agent": "system", "at": p.sent_at},
                        t,
                        None,
                        {"before": before, "after": "open", "why": "customer replied"},
                    )
                )
        self.clock.update_clocks(t, p.sent_at)

    def _edit(self, existing: Message, msg: InboundMessage) -> IngestResult:
        versions = json.loads(existing.versions or "[]")
        versions.append({"text": existing.text, "until": self.now.isoformat()})
        existing.versions = json.dumps(versions, ensure_ascii=False)
        existing.text = msg.text
        existing.edited_at = self.now
        self.s.add(existing)
        from supportdesk.search import index as search_index

        search_index.index_message(self.s, existing, None)
        events.record(
            self.s,
            "message_edited",
            agent="system",
            ticket_id=existing.ticket_id,
            message_id=existing.id,
            before=versions[-1]["text"],
            after=msg.text,
        )
        return IngestResult("updated", existing.ticket_id, existing.id, reason="edited")

    def _bounce(
        self,
        ticket: Ticket,
        matched: str,
        msg: InboundMessage,
        raw_sha: str | None,
        sent_at: datetime,
    ) -> IngestResult:
        note = Message(
            ticket_id=ticket.id or 0,
            direction="note",
            channel=msg.channel,
            kind=msg.kind,
            author="mail delivery system",
            author_address=msg.sender_address,
            dedupe_key=msg.dedupe_key,
            message_id=msg.external_id,
            subject=msg.subject,
            text=f"Delivery failed for <{matched}>: {msg.bounce_error or 'bounced'}",
            quoted_text=msg.text,
            created_at=sent_at,
            received_at=self.now,
            thread_reason=f"bounce of <{matched}>",
            raw_sha256=raw_sha,
            auto_reason=msg.auto_reason or "bounce",
            is_auto=True,
        )
        self.s.add(note)
        ob = self.s.exec(select(Outbox).where(Outbox.external_message_id == matched)).first()
        if ob is not None:
            ob.state = "failed"
            ob.last_error = f"bounced: {msg.bounce_error or 'no reason given'}"[:500]
            self.s.add(ob)
        self.s.flush()
        events.record(
            self.s,
            "delivery_failed",
            agent="system",
            ticket_id=ticket.id,
            message_id=note.id,
            error=msg.bounce_error,
            of=matched,
            at=sent_at,
        )
        return IngestResult("bounce", ticket.id, note.id, reason=note.thread_reason)

    # ---- writing ---------------------------------------------------------------------------
    def _flush_customers(self) -> None:
        if not self.new_customers:
            return
        conn = self.s.connection()
        custs = [c for c, _i in self.new_customers]
        _insert_rows(conn, Customer, custs)  # type: ignore[arg-type]
        for cust, ident in self.new_customers:
            ident.customer_id = cust.id or 0
        _insert_rows(conn, Identity, [i for _c, i in self.new_customers])  # type: ignore[misc]
        self.new_customers = []

    def write(self) -> None:
        s = self.s
        self._flush_customers()
        conn = s.connection()
        for _i, p in self.placed:
            if p.created and not p.ticket.customer_id:
                p.ticket.customer_id = p.customer.id or 0
        # ids first, so a new ticket is inserted once with its final counters
        early = _allocate_ids(conn, Ticket, self.new_tickets)
        if not early:
            _insert_rows(conn, Ticket, self.new_tickets)  # type: ignore[arg-type]
        rows: list[_Row] = []
        for _i, p in self.placed:
            m, t = p.msg, p.ticket
            p.message = _Row(  # type: ignore[assignment]
                Message,
                id=None,
                ticket_id=t.id or 0,
                direction="out" if p.outbound else "in",
                channel=m.channel,
                kind=m.kind,
                author=m.sender_name or m.sender_address,
                author_address=m.sender_address,
                customer_id=None if p.outbound else p.customer.id,
                dedupe_key=m.dedupe_key,
                message_id=m.external_id,
                in_reply_to=(m.in_reply_to[-1] if m.in_reply_to else None),
                references=" ".join(m.references[-50:]),
                subject=m.subject[:998],
                text=m.text,
                quoted_text=m.quoted_text,
                html=m.html,
                created_at=p.sent_at,
                received_at=self.now,
                thread_reason=p.reason,
                raw_sha256=p.raw_sha256,
                auto_reason=m.auto_reason,
                to_addresses=_address_list(m.to_addresses),
                cc_addresses=_address_list(m.cc_addresses),
            )
            rows.append(p.message)  # type: ignore[arg-type]
        if early:
            early = _allocate_ids(conn, Message, rows)
        if not early:
            _insert_rows(conn, Message, rows)
        for _i, p in self.placed:
            assert p.message is not None
            mid = p.message.id or 0
            if p.ticket.last_message_id is None or mid > p.ticket.last_message_id:
                p.ticket.last_message_id = mid
        if early:
            _write_rows(conn, Ticket, self.new_tickets)
            _write_rows(conn, Message, rows)
        for _i, p in self.placed:
            if p.msg.attachments:
                p.att_names = self._store_attachments(p.message, p.msg)
        created_seen: set[int] = set()
        events_rows: list[dict[str, Any]] = []
        for _i, p in self.placed:
            t, stored = p.ticket, p.message
            assert stored is not None and t.id is not None
            if p.created and t.id not in created_seen:
                created_seen.add(t.id)
                events_rows.append(
                    self._event_row(
                        "created",
                        "system",
                        p.sent_at,
                        t.id,
                        p.customer.id,
                        None,
                        {"channel": p.msg.channel, "subject": t.subject},
                    )
                )
            if p.outbound:
                events_rows.append(
                    self._event_row(
                        "reply",
                        p.msg.sender_name or "agent",
                        p.sent_at,
                        t.id,
                        None,
                        stored.id,
                        {"imported": True},
                    )
                )
            elif not self.historical:
                events_rows.append(
                    self._event_row(
                        "message_in",
                        "system",
                        p.sent_at,
                        t.id,
                        p.customer.id,
                        stored.id,
                        # what the parser cut to bound the message's cost, if anything
                        {"reason": p.reason, "cut": p.msg.extra["parse_notes"]}
                        if p.msg.extra.get("parse_notes")
                        else {"reason": p.reason},
                    )
                )
        if self.historical and self.placed:
            # imported history: one audit record for the batch, not one per message (each
            # message keeps its own thread_reason; new tickets still get "created")
            events_rows.append(
                self._event_row(
                    "imported",
                    "system",
                    self.now,
                    None,
                    None,
                    None,
                    {
                        "messages": len(self.placed),
                        "new_tickets": len(created_seen),
                        "first_message_id": self.placed[0][1].message.id,  # type: ignore[union-attr]
                        "last_message_id": self.placed[-1][1].message.id,  # type: ignore[union-attr]
                    },
                )
            )
        for kind, meta, t, mid, data in self.events:
            events_rows.append(
                self._event_row(kind, meta["agent"], meta["at"], t.id, None, mid, data)
            )
        _write_rows(conn, Event, events_rows)
        new_ids = {id(t) for t in self.new_tickets}
        if not early and self.new_tickets:
            # inserted before their messages: write the counters they got since
            tbl = Ticket.__table__  # type: ignore[attr-defined]
            cols: tuple[str, ...] = ("message_count", "last_message_id", "updated_at", "status")
            cols += ("first_response_at", "last_agent_at", "last_customer_at", "due_at")
            conn.execute(
                sa.update(tbl)
                .where(tbl.c.id == sa.bindparam("b_id"))
                .values({k: sa.bindparam(k) for k in cols}),
                [{"b_id": t.id, **{k: getattr(t, k) for k in cols}} for t in self.new_tickets],
            )
        for _i, p in self.placed:
            if id(p.ticket) not in new_ids:
                s.add(p.ticket)
        if self.renamed:  # existing customers ingest named (they are not tracked objects)
            tbl = Customer.__table__  # type: ignore[attr-defined]
            conn.execute(
                sa.update(tbl)
                .where(tbl.c.id == sa.bindparam("b_id"))
                .values(name=sa.bindparam("b_name"), updated_at=sa.bindparam("b_at")),
                [{"b_id": c.id, "b_name": c.name, "b_at": self.now} for c in self.renamed.values()],
            )
        s.flush()
        self._index()

    def _event_row(
        self,
        kind: str,
        agent: str,
        at: datetime,
        ticket_id: int | None,
        customer_id: int | None,
        message_id: int | None,
        data: dict[str, Any],
    ) -> dict[str, Any]:
        return {
            "ticket_id": ticket_id,
            "customer_id": customer_id,
            "message_id": message_id,
            "agent": agent,
            "kind": kind,
            "data": json.dumps(data, ensure_ascii=False, default=str),
            "batch": None,
            "created_at": at,
        }

    def _store_attachments(self, message: Any, msg: InboundMessage) -> list[str]:
        names = []
        for i, att in enumerate(msg.attachments):
            row = AttachmentRow(
                message_id=message.id,
                filename=(att.filename or "attachment").replace("\x00", ""),
                size=att.size or (len(att.data) if att.data is not None else 0),
                content_type=att.content_type or "application/octet-stream",
                note=att.note,
                inline=att.inline,
            )
            if att.data is not None:
                row.sha256 = sha256_hex(att.data)
                try:
                    row.stored_path = store_attachment(
                        self.desk.home, message.id or 0, i, att.filename, att.data
                    )
                except StorageError as exc:
                    row.note = (
                        f"not stored: {exc.strerror or exc}"  # never lose the message over a file
                    )
            self.s.add(row)
            names.append(row.filename)
        return names

    def _index(self) -> None:
        """Index the new messages and tickets, the new customers, and customers ingest renamed."""
        from supportdesk.store import search as store

        conn = self.s.connection()
        if not store.available(conn):
            return
        docs: list[Any] = []
        for i, p in self.placed:
            m = p.message
            assert m is not None
            st = self.stems.get(i)
            docs.append(
                store.Doc(
                    store.KIND_MESSAGE,
                    m.id or 0,
                    title=m.subject or "",
                    body=m.text or "",
                    extra=" ".join(p.att_names),
                    stemmed=(st[0], st[1], None) if st is not None else None,
                )
            )
            if p.created:
                t = p.ticket
                title = st[2] if st is not None and id(t) in self._titled else None
                docs.append(
                    store.Doc(
                        store.KIND_TICKET, t.id or 0, title=t.subject, stemmed=(title, "", "")
                    )
                )
        for c, ident in self.all_new_customers:
            docs.append(
                store.Doc(
                    store.KIND_CUSTOMER,
                    c.id or 0,
                    title=f"{c.name} {c.company}",
                    body=c.notes or "",
                    extra=f"{ident.address} {ident.display}",
                )
            )
        store.upsert(conn, docs)
        if self.renamed:
            from supportdesk.search import index as search_index

            for cid in self.renamed:
                search_index.index_customer(self.s, cid)

    def finish(self) -> list[IngestResult]:
        out: list[IngestResult] = []
        placed = dict(self.placed)
        for i, r in enumerate(self.results):
            if r is not None:
                out.append(r)
                continue
            p = placed[i]
            assert p.message is not None
            needs_ack = False
            if p.created and not self.historical and not p.outbound:
                from supportdesk.inbound.ack import ack_allowed

                needs_ack = ack_allowed(self.s, self.desk, p.msg, p.msg.sender_address)
            outcome: Outcome = (
                "outbound" if p.outbound else ("new_ticket" if p.created else "joined")
            )
            reason = p.reason + (" (reopened)" if p.reopened else "")
            out.append(
                IngestResult(outcome, p.ticket.id, p.message.id, p.customer.id, reason, needs_ack)
            )
        return out


def ingest_many(
    session: Session,
    desk: Desk,
    msgs: Sequence[InboundMessage],
    *,
    historical: bool = False,
    raw_sha256s: Sequence[str | None] | None = None,
    now: datetime | None = None,
    stems: Sequence[tuple[str, str, str] | None] | None = None,
) -> list[IngestResult]:
    """Store normalized inbound messages in order; the caller commits (with its cursor).

    ``stems`` (from the import's parser processes, see import_prep.stems_of) saves stemming
    the text for the search index here.
    """
    batch = _Batch(session, desk, historical=historical, now=now or utcnow())
    existing = batch.prefetch(msgs)
    shas = list(raw_sha256s) if raw_sha256s is not None else [None] * len(msgs)
    if stems is not None:
        batch.stems = {i: st for i, st in enumerate(stems) if st is not None}
    for i, (msg, sha) in enumerate(zip(msgs, shas, strict=True)):
        batch.place(i, msg, sha, existing)
    batch.write()
    return batch.finish()


def ingest(
    session: Session,
    desk: Desk,
    msg: InboundMessage,
    *,
    historical: bool = False,
    raw_sha256: str | None = None,
    now: datetime | None = None,
) -> IngestResult:
    """Store one normalized inbound message. The caller commits (with its cursor)."""
    return ingest_many(
        session, desk, [msg], historical=historical, raw_sha256s=[raw_sha256], now=now
    )[0]


def quarantine(
    session: Session, *, channel: str, source: str, raw_sha256: str, error: str
) -> Quarantine:
    """Keep a message that could not be understood; the rest of the batch goes on."""
    row = session.exec(
        select(Quarantine).where(
            Quarantine.raw_sha256 == raw_sha256, col(Quarantine.resolved_at).is_(None)
        )
    ).first()
    if row is not None:
        row.attempts += 1
        row.error = error[:1000]
        session.add(row)
        return row
    row = Quarantine(
        channel=channel, source=source[:500], raw_sha256=raw_sha256, error=error[:1000]
    )
    session.add(row)
    return row
