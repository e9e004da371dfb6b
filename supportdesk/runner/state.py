"""What the runner keeps in the database: the lease, channel health, cursors, outbox claims.

The runner lease (one active runner per desk, whoever starts it) is a ``lease`` row on both
backends, fenced by an epoch:

* The holder renews the row every ``HEARTBEAT`` (1 s); it expires ``LEASE_TTL`` (10 s) after the
  last renewal. A standby takes it over once it expired, or at once when the holder ran on this
  host and its process is gone. Nothing relies on a connection staying open: a frozen or
  partitioned holder keeps its TCP connections and PostgreSQL session (FACTS.md) but stops
  renewing, so a standby replaces it within ``TAKEOVER_BOUND`` (TTL + one standby poll = 11 s)
  on SQLite and PostgreSQL alike. On PostgreSQL the times are the server's clock (``now()``), so
  runners on several hosts agree on them.
* Every change of holder adds one to ``lease.epoch``, the fencing token. A claim on an outbox
  row records the claimer's epoch; marking it sent or failed is a conditional update on that
  epoch still being the live one, so a runner that lost its lease cannot mark anything. Right
  before a send's point of no return the runner checks that its lease is still valid by its own
  monotonic clock (a frozen process's clock keeps running) and records ``in_flight_at``.
* A claimed row is taken back only when its claim's epoch is no longer the live one: if it never
  got in flight it is queued again; if it did, e-mail (the same Message-ID) is sent again and a
  channel without an idempotency key leaves it "in doubt" for an agent (or the channel's
  ``in_doubt = "resend"`` policy) to decide.

Long because: the fenced lease, channel health, cursors and the outbox claims are all
conditional on the same lease epoch; split, each piece would re-read the others' rules.
"""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
    Customer,
    Lease,
    Message,
    Outbox,
    Ticket,
    utcnow,
)

LEASE_TTL = timedelta(seconds=10)
HEARTBEAT = 1.0  # seconds between renewals (and between a standby's tries)
TAKEOVER_BOUND = LEASE_TTL.total_seconds() + HEARTBEAT  # a frozen holder is replaced within this
# a send needs at least this much of the lease left (by the local monotonic clock): covers the
# clock skew between this host and the database server, and the time a send takes to commit
SEND_MARGIN = 2.0
# PostgreSQL ends a runner's session idle inside a transaction for this long (a frozen runner
# would hold the write lock, and so every writer, until it resumed)
IDLE_IN_TRANSACTION = 4.0
SENDING_LEASE = timedelta(seconds=120)  # unused since the fenced lease; kept for old callers


class Clock:
    """The monotonic clock the lease is kept by: its local deadline, the keeper's pauses.
    Tests swap in one they advance (``use_clock``) instead of sleeping through a lease."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep_until(self, deadline: float, stop: threading.Event) -> bool:
        """Wait until ``monotonic()`` reaches ``deadline`` or ``stop`` is set (and ``wake``
        called); True when stopped."""
        return stop.wait(max(deadline - self.monotonic(), 0.0))

    def wake(self) -> None:
        """``stop`` was set: sleepers return now (``stop.wait`` already does)."""


_clock = Clock()


def clock() -> Clock:
    return _clock


@contextmanager
def use_clock(replacement: Clock) -> Iterator[Clock]:
    """Keep the lease by ``replacement`` (a test's clock) inside the block."""
    global _clock
    before, _clock = _clock, replacement
    try:
        yield replacement
    finally:
        _clock = before


class LeaseLost(Exception):
    """This runner's lease epoch is no longer the live one: it must not send or mark anything."""


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# (database url, lease name, holder) -> (epoch held, monotonic time the lease is valid until)
_held: dict[tuple[str, str, str], tuple[int, float]] = {}
_held_guard = threading.Lock()


def _db_now(s: Session, desk: Desk) -> datetime:
    """The database's clock on PostgreSQL (shared by every host), this host's on SQLite."""
    if desk.db.dialect == "postgresql":
        value = s.exec(sa.select(sa.func.now())).one()  # type: ignore[call-overload]
        got = value[0] if isinstance(value, tuple | sa.Row) else value
        assert isinstance(got, datetime)
        return got
    return utcnow()


def acquire_lease(
    desk: Desk,
    name: str = "runner",
    *,
    holder: str | None = None,
    ttl: timedelta = LEASE_TTL,
    now: datetime | None = None,
    renew_only: bool = False,
) -> int:
    """Take or renew the named lease. Returns the epoch held (a fencing token, >= 1), or 0 while
    someone else holds a live one (and then this holder holds nothing any more).

    ``renew_only``: keep the epoch this process holds or nothing (0), never start a new one:
    a pass that lost its lease must not go on under a new epoch (its claims were taken back)."""
    holder = holder or holder_id()
    key = (desk.db.url, name, holder)
    started = _clock.monotonic()
    with desk.db.write() as s:
        at = now or _db_now(s, desk)
        lease = s.get(Lease, name)
        if lease is None:
            lease = Lease(name=name, epoch=0)
        with _held_guard:
            mine = _held.get(key)
        renewing = mine is not None and lease.holder == holder and lease.epoch == mine[0]
        if not renewing and renew_only:
            with _held_guard:
                _held.pop(key, None)
            return 0
        if not renewing:
            live = (
                lease.holder
                and lease.holder != holder
                and lease.expires_at is not None
                and lease.expires_at > at
                and not _dead_local_holder(lease)
            )
            if live:
                with _held_guard:
                    _held.pop(key, None)
                return 0
            lease.epoch = (lease.epoch or 0) + 1
        lease.holder = holder
        lease.pid = os.getpid()
        lease.host = socket.gethostname()
        lease.heartbeat_at = at
        lease.expires_at = at + ttl
        s.add(lease)
        epoch = lease.epoch
    with _held_guard:
        _held[key] = (epoch, started + ttl.total_seconds())
    return epoch


def lease_valid(
    desk: Desk,
    epoch: int,
    *,
    name: str = "runner",
    holder: str | None = None,
    margin: float = SEND_MARGIN,
) -> bool:
    """Whether this process still holds ``epoch`` with ``margin`` seconds to spare, by the local
    monotonic clock (no database round trip: safe to call right before a point of no return)."""
    key = (desk.db.url, name, holder or holder_id())
    with _held_guard:
        mine = _held.get(key)
    return mine is not None and mine[0] == epoch and _clock.monotonic() + margin < mine[1]


def live_epoch(s: Session, desk: Desk, name: str = "runner") -> int:
    """The epoch of the live lease, or 0 when none is live."""
    lease = s.get(Lease, name)
    if lease is None or not lease.holder or lease.expires_at is None:
        return 0
    if lease.expires_at <= _db_now(s, desk):
        return 0
    return lease.epoch


def _require_epoch(s: Session, desk: Desk, epoch: int) -> None:
    if not epoch or live_epoch(s, desk) != epoch:
        raise LeaseLost(f"runner lease epoch {epoch} is no longer the live one")


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
    """Give the lease up (a standby takes it at once); only the epoch this process holds."""
    holder = holder or holder_id()
    key = (desk.db.url, name, holder)
    with _held_guard:
        mine = _held.pop(key, None)
    if mine is None:
        return
    with desk.db.write() as s:
        lease = s.get(Lease, name)
        if lease is not None and lease.holder == holder and lease.epoch == mine[0]:
            lease.expires_at = _db_now(s, desk)
            s.add(lease)


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


RECONNECT_CAP = 30.0  # seconds: a channel that came back is used again within this


def reconnect_delay(failures: int) -> float:
    """Seconds before the next try after ``failures`` failures in a row: 1, 2, 4 ... capped at
    ``RECONNECT_CAP``, with jitter (75-100 %) so that several runners or channels do not retry
    in lock-step."""
    base = min(2.0 ** max(min(failures, 16) - 1, 0), RECONNECT_CAP)
    return base * random.uniform(0.75, 1.0)


def record_error(desk: Desk, channel: str, error: str) -> timedelta:
    """Remember a channel failure; returns how long to wait before the next try."""
    with desk.db.write() as s:
        st = s.get(ChannelState, channel) or ChannelState(channel=channel)
        now = utcnow()
        st.last_error_at = now
        st.last_poll_at = now
        st.last_error = error[:500]
        st.failures += 1
        wait = timedelta(seconds=reconnect_delay(st.failures))
        st.next_try_at = now + wait
        s.add(st)
    return wait


def _idempotent(kind: str) -> bool:
    """A row of a channel no longer configured: does the channel speaking its kind resend
    without delivering twice (e-mail's Message-ID)?"""
    from supportdesk.channels.registry import class_for_kind

    cls = class_for_kind(kind)
    return cls is not None and cls.capabilities.idempotent_send


def _release(row: Outbox) -> None:
    """The claim is over (sent, failed, taken back): no epoch, no claim lease, not in flight."""
    row.claim_epoch = None
    row.lease_until = None
    row.in_flight_at = None


def _outbox_event(s: Session, row: Outbox, kind: str, **data: Any) -> None:
    events.record(
        s,
        kind,
        agent="system",
        ticket_id=row.ticket_id,
        message_id=row.message_id,
        outbox_id=row.id,
        **data,
    )


def _in_doubt(s: Session, row: Outbox, why: str, **data: Any) -> None:
    """It may or may not have arrived: nothing resends it until an agent resends or drops it."""
    row.state = "in_doubt"
    row.next_attempt_at = None
    row.last_error = why
    _outbox_event(s, row, "delivery_in_doubt", **data)


IN_DOUBT_ERROR = (
    "the runner stopped while sending this: it may or may not have arrived; "
    "resend it (outbox resend) or drop it (outbox drop)"
)


def reclaim_orphans(
    desk: Desk,
    epoch: int = 0,
    *,
    idempotent: dict[str, bool] | None = None,
    policy: dict[str, str] | None = None,
) -> int:
    """Take back rows claimed under an epoch that is no longer live (a runner that died, froze or
    lost its lease). A row that never got in flight is queued again. One that did may have been
    delivered: it is sent again when the channel's policy (``policy[channel]``) is ``"resend"``,
    or, with no policy, when a resend cannot deliver twice (``idempotent[channel]``: e-mail's
    Message-ID); otherwise it becomes "in doubt" and waits for an agent. Returns how many rows were taken back.

    ``epoch``: the caller's live epoch (rows claimed under it are its own and left alone); 0 =
    whatever epoch is live now.
    """
    idempotent = idempotent or {}
    policy = policy or {}
    taken = 0
    with desk.db.write() as s:
        live = epoch or live_epoch(s, desk)
        rows = s.exec(select(Outbox).where(Outbox.state == "sending")).all()
        now = utcnow()
        for row in rows:
            if row.claim_epoch is not None and live and row.claim_epoch == live:
                continue  # the live runner's own claim
            taken += 1
            same_id = (
                idempotent[row.channel] if row.channel in idempotent else _idempotent(row.kind)
            )
            resend = policy[row.channel] == "resend" if row.channel in policy else same_id
            before_epoch = row.claim_epoch
            in_flight = row.in_flight_at is not None
            _release(row)
            if not in_flight:
                row.state = "queued"
                row.next_attempt_at = now
                row.attempts = max(row.attempts - 1, 0)  # the attempt never reached the peer
                row.last_error = "interrupted before sending; queued again"
            elif resend:
                row.state = "queued"
                row.next_attempt_at = now
                row.last_error = (
                    "interrupted while sending; sending again with the same id"
                    if same_id
                    else "interrupted while sending; sent again by the channel's in_doubt policy"
                )
                _outbox_event(s, row, "delivery_resent_in_doubt", epoch=before_epoch)
            else:
                _in_doubt(s, row, IN_DOUBT_ERROR, epoch=before_epoch)
            s.add(row)
    return taken


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
    epoch: int = 0


def claim_due(
    desk: Desk,
    *,
    epoch: int,
    channels: list[str] | None = None,
    limit: int = 1,
    now: datetime | None = None,
) -> list[Claimed]:
    """Claim due queued rows for the runner holding ``epoch`` (checked in the same transaction:
    LeaseLost when it is no longer live). Claim one row at a time, right before sending it, so a
    crash leaves at most one row per channel worker in the air."""
    out: list[Claimed] = []
    with desk.db.write() as s:
        _require_epoch(s, desk, epoch)
        now = now or utcnow()
        q = (
            select(Outbox)
            .where(
                (col(Outbox.state) == "queued")
                & ((col(Outbox.next_attempt_at).is_(None)) | (col(Outbox.next_attempt_at) <= now))
            )
            .order_by(col(Outbox.id))
            .limit(limit)
        )
        if channels:
            q = q.where(col(Outbox.channel).in_(channels))
        for row in s.exec(q).all():
            row.state = "sending"
            row.claim_epoch = epoch
            row.in_flight_at = None
            row.lease_until = None
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
                    epoch=epoch,
                )
            )
    return out


def _own_claim(s: Session, desk: Desk, outbox_id: int, epoch: int) -> Outbox:
    """The row, if it is still claimed under ``epoch`` and that epoch is live; else LeaseLost."""
    _require_epoch(s, desk, epoch)
    row = s.get(Outbox, outbox_id)
    if row is None or row.state != "sending" or row.claim_epoch != epoch:
        raise LeaseLost(f"outbox item {outbox_id} is no longer claimed by epoch {epoch}")
    return row


def mark_in_flight(desk: Desk, outbox_id: int, epoch: int) -> None:
    """Record that the send is about to pass its point of no return (LeaseLost: do not send)."""
    with desk.db.write() as s:
        row = _own_claim(s, desk, outbox_id, epoch)
        if row.in_flight_at is None:
            row.in_flight_at = utcnow()
            s.add(row)


def mark_sent(
    desk: Desk,
    outbox_id: int,
    external_ids: list[str],
    *,
    epoch: int,
    at: datetime | None = None,
) -> None:
    """The channel confirmed the delivery: commit it at once (LeaseLost if the claim is gone).
    An agent's reply becomes the ticket's first response if it is the first delivered."""
    with desk.db.write() as s:
        _mark_sent(s, desk, outbox_id, external_ids, epoch, at)


def mark_sent_many(
    desk: Desk, items: list[tuple[int, list[str]]], *, epoch: int, at: datetime | None = None
) -> list[int]:
    """``mark_sent`` for several rows in one transaction (a push channel's busy second);
    returns the rows whose claim was gone (not marked)."""
    lost: list[int] = []
    if not items:
        return lost
    with desk.db.write() as s:
        for outbox_id, external_ids in items:
            try:
                _mark_sent(s, desk, outbox_id, external_ids, epoch, at)
            except LeaseLost:  # raised before anything of this row changed
                lost.append(outbox_id)
    return lost


def _mark_sent(
    s: Session,
    desk: Desk,
    outbox_id: int,
    external_ids: list[str],
    epoch: int,
    at: datetime | None,
) -> None:
    row = _own_claim(s, desk, outbox_id, epoch)
    row.state = "sent"
    row.sent_at = at or utcnow()
    row.last_error = ""
    _release(row)
    if external_ids and not row.external_message_id:
        row.external_message_id = external_ids[0]
    s.add(row)
    if row.message_id:
        msg = s.get(Message, row.message_id)
        if msg is not None and not msg.message_id and external_ids:
            msg.message_id = external_ids[0]
            s.add(msg)
        forward = bool(json.loads(row.payload or "{}").get("forward"))  # not an answer
        if msg is not None and msg.direction == "out" and not msg.is_auto and not forward:
            _first_response(s, row.ticket_id, row.sent_at or utcnow())
    _outbox_event(s, row, "delivered", at=row.sent_at, external_ids=external_ids)


def _first_response(s: Session, ticket_id: int | None, at: datetime) -> None:
    """The first agent reply that was delivered sets the ticket's first response."""
    t = s.get(Ticket, ticket_id) if ticket_id else None
    if t is None or (t.first_response_at is not None and t.first_response_at <= at):
        return
    t.first_response_at = at
    t.updated_at = max(t.updated_at, utcnow())  # a clock column changed (store/slamark.py)
    sla.refresh_due(t)
    s.add(t)


def mark_refused(desk: Desk, outbox_id: int, why: str, *, epoch: int, sent_parts: int = 0) -> None:
    """The runner withdrew the send before its point of no return (``SendAborted``): nothing of
    it is in the air, so it is queued again at once, without counting a delivery attempt; a
    split message keeps the parts that went out (``sent_parts``) and resumes after them.
    LeaseLost when the claim is no longer this epoch's: the live runner takes it back."""
    with desk.db.write() as s:
        row = _own_claim(s, desk, outbox_id, epoch)
        _release(row)
        row.state = "queued"
        row.next_attempt_at = utcnow()
        row.attempts = max(row.attempts - 1, 0)  # the attempt never reached the peer
        row.sent_parts = max(row.sent_parts, sent_parts)
        row.last_error = f"not sent: {why[:300]}; queued again"
        s.add(row)


def mark_progress(desk: Desk, outbox_id: int, sent_parts: int, *, epoch: int) -> None:
    with desk.db.write() as s:
        row = _own_claim(s, desk, outbox_id, epoch)
        row.sent_parts = max(row.sent_parts, sent_parts)
        s.add(row)


def mark_failed(
    desk: Desk,
    outbox_id: int,
    error: str,
    *,
    epoch: int,
    permanent: bool = False,
    retry_after: float | None = None,
    sent_parts: int | None = None,
    maybe_delivered: bool = False,
    resend_in_doubt: bool = False,
) -> str:
    """Record a failed attempt; returns the new state (queued for a retry, failed, in_doubt).

    ``maybe_delivered``: the send failed after its point of no return without an answer, so the
    peer may have it: unless ``resend_in_doubt`` (an idempotent channel, or the channel's
    ``in_doubt = "resend"``) the row becomes "in doubt" for an agent to decide. LeaseLost if
    the claim is no longer this epoch's."""
    with desk.db.write() as s:
        row = _own_claim(s, desk, outbox_id, epoch)
        in_doubt = maybe_delivered and row.in_flight_at is not None and not resend_in_doubt
        _release(row)
        if sent_parts is not None:
            row.sent_parts = max(row.sent_parts, sent_parts)
        if in_doubt:
            msg = f"{error[:300]} It may or may not have arrived: resend or drop it."
            _in_doubt(s, row, msg, error=error[:300])
        elif permanent or row.attempts >= MAX_ATTEMPTS:
            row.last_error = error[:500]
            row.state = "failed"
            _outbox_event(s, row, "delivery_failed", error=row.last_error)
        else:
            row.last_error = error[:500]
            row.state = "queued"
            wait = backoff(row.attempts)
            if retry_after is not None:
                wait = max(wait, timedelta(seconds=retry_after))
            row.next_attempt_at = utcnow() + wait
        s.add(row)
        return row.state
