"""What the runner keeps in the database: the lease, channel health, cursors, outbox claims.

The runner lease (one active runner per desk, whoever starts it):

* SQLite: a ``lease`` row with a heartbeat. The holder renews it every second; a standby takes it
  over when it expires (``LEASE_TTL``) or at once when the holder ran on this host and its
  process is gone.
* PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) held on a dedicated
  connection for as long as the runner is active. When the holder dies, its connection closes,
  the server releases the lock and a standby takes over on its next try, on any host. The
  ``lease`` row is still written (holder, heartbeat) so ``status`` can say who is active.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from supportdesk.desk import audit as events
from supportdesk.desk.desk import Desk
from supportdesk.outbound.outbox import MAX_ATTEMPTS, backoff
from supportdesk.sla import clocks as sla
from supportdesk.store.models import (
    AttachmentRow,
    ChannelState,
    Cursor,
    Lease,
    Message,
    Outbox,
    Ticket,
    utcnow,
)

LEASE_TTL = timedelta(seconds=10)
SENDING_LEASE = timedelta(seconds=120)


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def acquire_lease(
    desk: Desk,
    name: str = "runner",
    *,
    holder: str | None = None,
    ttl: timedelta = LEASE_TTL,
    now: datetime | None = None,
) -> bool:
    """Take or renew the named lease; False while someone else holds a live one."""
    holder = holder or holder_id()
    now = now or utcnow()
    if desk.db.dialect == "postgresql":
        if not _pg_lock(desk, name, holder):
            return False
        _write_lease_row(desk, name, holder, now, ttl)
        return True
    with desk.db.write() as s:
        lease = s.get(Lease, name)
        if lease is None:
            lease = Lease(name=name)
        elif (
            lease.holder != holder
            and lease.expires_at is not None
            and lease.expires_at > now
            and not _dead_local_holder(lease)
        ):
            return False
        lease.holder = holder
        lease.pid = os.getpid()
        lease.host = socket.gethostname()
        lease.heartbeat_at = now
        lease.expires_at = now + ttl
        s.add(lease)
    return True


def _write_lease_row(desk: Desk, name: str, holder: str, now: datetime, ttl: timedelta) -> None:
    with desk.db.write() as s:
        lease = s.get(Lease, name) or Lease(name=name)
        lease.holder = holder
        lease.pid = os.getpid()
        lease.host = socket.gethostname()
        lease.heartbeat_at = now
        lease.expires_at = now + ttl
        s.add(lease)


# ---- PostgreSQL: advisory locks on dedicated connections ------------------------------------

_pg_held: dict[tuple[str, str, str], tuple[sa.Engine, sa.Connection]] = {}
_pg_guard = threading.Lock()


def lease_lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for the lease ``name``."""
    digest = hashlib.sha256(f"supportdesk-lease:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _pg_lock(desk: Desk, name: str, holder: str) -> bool:
    """Hold (or keep holding) the lease's advisory lock; False while another session holds it."""
    key = (desk.db.url, name, holder)
    with _pg_guard:
        held = _pg_held.get(key)
        if held is not None:
            try:  # still connected means still holding: the server drops the lock only with us
                held[1].exec_driver_sql("SELECT 1")
                return True
            except sa.exc.DBAPIError:
                _pg_drop(key)
        engine = sa.create_engine(
            desk.db.url,
            poolclass=sa.pool.NullPool,
            isolation_level="AUTOCOMMIT",
            # notice a dead peer within seconds rather than the system's two hours
            connect_args={
                "keepalives": 1,
                "keepalives_idle": 5,
                "keepalives_interval": 2,
                "keepalives_count": 3,
            },
        )
        conn = engine.connect()
        try:
            got = conn.execute(
                sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": lease_lock_key(name)}
            ).scalar()
        except BaseException:
            conn.close()
            engine.dispose()
            raise
        if not got:
            conn.close()
            engine.dispose()
            return False
        _pg_held[key] = (engine, conn)
        return True


def _pg_drop(key: tuple[str, str, str]) -> None:
    engine, conn = _pg_held.pop(key)
    try:
        conn.close()
    except Exception:
        pass
    engine.dispose()


def _pg_unlock(desk: Desk, name: str, holder: str) -> None:
    key = (desk.db.url, name, holder)
    with _pg_guard:
        held = _pg_held.get(key)
        if held is None:
            return
        try:
            held[1].execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": lease_lock_key(name)})
        except sa.exc.DBAPIError:
            pass
        _pg_drop(key)


def _dead_local_holder(lease: Lease) -> bool:
    """The holder ran on this host and its process is gone: no need to wait for the expiry."""
    if lease.host != socket.gethostname() or not lease.pid or lease.pid == os.getpid():
        return False
    try:
        os.kill(lease.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a zombie (killed, not yet reaped) is dead too
        with open(f"/proc/{lease.pid}/stat", encoding="ascii") as fh:
            return fh.read().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return False


def release_lease(desk: Desk, name: str = "runner", *, holder: str | None = None) -> None:
    holder = holder or holder_id()
    if desk.db.dialect == "postgresql":
        _pg_unlock(desk, name, holder)
    with desk.db.write() as s:
        lease = s.get(Lease, name)
        if lease is not None and lease.holder == holder:
            lease.expires_at = utcnow()
            s.add(lease)


def get_cursor(session: Session, channel: str, key: str) -> Any:
    row = session.exec(select(Cursor).where(Cursor.channel == channel, Cursor.key == key)).first()
    return json.loads(row.value) if row is not None else None


def set_cursor(session: Session, channel: str, key: str, value: Any) -> None:
    row = session.exec(select(Cursor).where(Cursor.channel == channel, Cursor.key == key)).first()
    if row is None:
        row = Cursor(channel=channel, key=key, value="null")
    row.value = json.dumps(value)
    row.updated_at = utcnow()
    session.add(row)


def record_success(desk: Desk, channel: str, *, polled: bool = True) -> None:
    with desk.db.write() as s:
        st = s.get(ChannelState, channel) or ChannelState(channel=channel)
        now = utcnow()
        st.last_success_at = now
        if polled:
            st.last_poll_at = now
        st.failures = 0
        st.next_try_at = None
        s.add(st)


def record_error(desk: Desk, channel: str, error: str) -> timedelta:
    """Remember a channel failure; returns how long to wait before the next try."""
    with desk.db.write() as s:
        st = s.get(ChannelState, channel) or ChannelState(channel=channel)
        now = utcnow()
        st.last_error_at = now
        st.last_poll_at = now
        st.last_error = error[:500]
        st.failures += 1
        wait = timedelta(seconds=min(2 ** min(st.failures, 8), 300))
        st.next_try_at = now + wait
        s.add(st)
    return wait


def reclaim_orphans(desk: Desk) -> int:
    """Rows left 'sending' by a runner that died: queue them again (same Message-ID).

    Only the lease holder sends, so when a runner becomes active every 'sending' row belongs
    to a dead one.
    """
    now = utcnow()
    with desk.db.write() as s:
        rows = s.exec(select(Outbox).where(Outbox.state == "sending")).all()
        for row in rows:
            row.state = "queued"
            row.next_attempt_at = now
            row.lease_until = None
            row.last_error = "interrupted while sending; sending again with the same id"
            s.add(row)
        return len(rows)


@dataclass
class Claimed:
    outbox_id: int
    ticket_id: int | None
    channel: str
    kind: str
    to_address: str
    text: str
    subject: str
    message_id: str
    in_reply_to: str
    references: list[str]
    auto: bool
    sent_parts: int
    attempts: int
    payload: dict[str, Any]
    attachments: list[tuple[str, str, str]] = field(default_factory=list)  # filename, path, type
    to_name: str = ""


def claim_due(
    desk: Desk, *, channels: list[str] | None = None, limit: int = 20, now: datetime | None = None
) -> list[Claimed]:
    """Claim due outbox rows (queued, or 'sending' whose claim expired after a crash)."""
    now = now or utcnow()
    out: list[Claimed] = []
    with desk.db.write() as s:
        q = (
            select(Outbox)
            .where(
                (
                    (col(Outbox.state) == "queued")
                    & (
                        (col(Outbox.next_attempt_at).is_(None))
                        | (col(Outbox.next_attempt_at) <= now)
                    )
                )
                | ((col(Outbox.state) == "sending") & (col(Outbox.lease_until) < now))
            )
            .order_by(col(Outbox.id))
            .limit(limit)
        )
        if channels:
            q = q.where(col(Outbox.channel).in_(channels))
        for row in s.exec(q).all():
            row.state = "sending"
            row.lease_until = now + SENDING_LEASE
            row.attempts += 1
            s.add(row)
            payload = json.loads(row.payload or "{}")
            msg = s.get(Message, row.message_id) if row.message_id else None
            text = msg.text if msg is not None else str(payload.get("text", ""))
            atts = []
            if msg is not None:
                for a in s.exec(
                    select(AttachmentRow).where(AttachmentRow.message_id == msg.id)
                ).all():
                    if a.stored_path:
                        atts.append((a.filename, a.stored_path, a.content_type))
            to_name = ""
            if row.ticket_id:
                t = s.get(Ticket, row.ticket_id)
                if t is not None:
                    from supportdesk.store.models import Customer

                    c = s.get(Customer, t.customer_id)
                    to_name = c.name if c else ""
            out.append(
                Claimed(
                    outbox_id=row.id or 0,
                    ticket_id=row.ticket_id,
                    channel=row.channel,
                    kind=row.kind,
                    to_address=row.to_address,
                    text=text,
                    subject=str(payload.get("subject", "")),
                    message_id=row.external_message_id,
                    in_reply_to=str(payload.get("in_reply_to") or ""),
                    references=list(payload.get("references") or []),
                    auto=bool(payload.get("auto")),
                    sent_parts=row.sent_parts,
                    attempts=row.attempts,
                    payload=payload,
                    attachments=atts,
                    to_name=to_name,
                )
            )
    return out


def mark_sent(
    desk: Desk, outbox_id: int, external_ids: list[str], *, at: datetime | None = None
) -> None:
    """The channel accepted the item; its reply becomes the first response if it is one."""
    with desk.db.write() as s:
        row = s.get(Outbox, outbox_id)
        if row is None:
            return
        row.state = "sent"
        row.sent_at = at or utcnow()
        row.last_error = ""
        row.lease_until = None
        if external_ids and not row.external_message_id:
            row.external_message_id = external_ids[0]
        s.add(row)
        if row.message_id:
            msg = s.get(Message, row.message_id)
            if msg is not None and not msg.message_id and external_ids:
                msg.message_id = external_ids[0]
                s.add(msg)
            if msg is not None and msg.direction == "out" and not msg.is_auto:
                _first_response(s, row.ticket_id, row.sent_at or utcnow())
        events.record(
            s,
            "delivered",
            agent="system",
            ticket_id=row.ticket_id,
            message_id=row.message_id,
            outbox_id=row.id,
            external_ids=external_ids,
        )


def _first_response(s: Session, ticket_id: int | None, at: datetime) -> None:
    """The first agent reply that was delivered sets the ticket's first response."""
    t = s.get(Ticket, ticket_id) if ticket_id else None
    if t is None or (t.first_response_at is not None and t.first_response_at <= at):
        return
    t.first_response_at = at
    sla.refresh_due(t)
    s.add(t)


def mark_progress(desk: Desk, outbox_id: int, sent_parts: int) -> None:
    with desk.db.write() as s:
        row = s.get(Outbox, outbox_id)
        if row is not None:
            row.sent_parts = max(row.sent_parts, sent_parts)
            s.add(row)


def mark_failed(
    desk: Desk,
    outbox_id: int,
    error: str,
    *,
    permanent: bool = False,
    retry_after: float | None = None,
    sent_parts: int | None = None,
) -> str:
    """Record a failed attempt; returns the new state (queued for a retry, or failed)."""
    with desk.db.write() as s:
        row = s.get(Outbox, outbox_id)
        if row is None:
            return "gone"
        row.last_error = error[:500]
        row.lease_until = None
        if sent_parts is not None:
            row.sent_parts = max(row.sent_parts, sent_parts)
        if permanent or row.attempts >= MAX_ATTEMPTS:
            row.state = "failed"
            events.record(
                s,
                "delivery_failed",
                agent="system",
                ticket_id=row.ticket_id,
                message_id=row.message_id,
                outbox_id=row.id,
                error=row.last_error,
            )
        else:
            row.state = "queued"
            wait = backoff(row.attempts)
            if retry_after is not None:
                wait = max(wait, timedelta(seconds=retry_after))
            row.next_attempt_at = utcnow() + wait
        s.add(row)
        return row.state


def queue_plain(
    session: Session,
    *,
    channel: str,
    kind: str,
    to_address: str,
    text: str,
    ticket_id: int | None = None,
    auto: bool = True,
) -> Outbox:
    """An outbox row without a ticket message (the Telegram /start greeting)."""
    row = Outbox(
        ticket_id=ticket_id,
        channel=channel,
        kind=kind,
        to_address=to_address,
        state="queued",
        next_attempt_at=utcnow(),
        payload=json.dumps({"text": text, "auto": auto}, ensure_ascii=False),
    )
    session.add(row)
    return row
