"""The fenced runner lease and the outbox claims it guards (SQLite; PostgreSQL with
SUPPORTDESK_TEST_DB=postgres): epochs, expiry by deadline, conditional marks, reclaiming."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

from supportdesk.outbound import outbox as ob
from supportdesk.runner import state as runtime
from supportdesk.store.models import Event, Lease, Outbox, Ticket, utcnow
from tests.factories import inbound_email, ingest

LATER = runtime.LEASE_TTL + timedelta(seconds=1)


def _queue(desk: Any, n: int = 1, *, channel: str = "support") -> list[int]:
    ids = []
    for i in range(n):
        r = ingest(desk, inbound_email(external_id=f"lease{i}-{channel}@x"), historical=True)
        with desk.db.write() as s:
            t = s.get(Ticket, r.ticket_id)
            m = ob.queue_outbound(s, desk, t, f"Ответ {i}", agent="alice", channel=channel)
            row = s.exec(select(Outbox).where(Outbox.message_id == m.id)).one()
            ids.append(int(row.id or 0))
    return ids


def _row(desk: Any, oid: int) -> Outbox:
    with desk.db.read() as s:
        row = s.get(Outbox, oid)
        assert row is not None
        return row


def test_epoch_grows_on_every_change_of_holder_and_never_on_renewal(desk: Any) -> None:
    e1 = runtime.acquire_lease(desk, holder="a")
    assert e1 >= 1
    assert runtime.acquire_lease(desk, holder="a") == e1  # renewal keeps the epoch
    assert runtime.acquire_lease(desk, holder="b") == 0
    runtime.release_lease(desk, holder="a")
    e2 = runtime.acquire_lease(desk, holder="b")
    assert e2 == e1 + 1
    assert runtime.acquire_lease(desk, holder="a") == 0
    runtime.release_lease(desk, holder="b")
    e3 = runtime.acquire_lease(desk, holder="a")
    assert e3 == e2 + 1  # the same holder again is a new epoch: its old claims stay dead
    runtime.release_lease(desk, holder="a")


def test_a_holder_that_stops_renewing_is_replaced_after_the_deadline(desk: Any) -> None:
    """A frozen holder keeps its connections (FACTS.md); only the row's deadline counts, on
    PostgreSQL as on SQLite."""
    with desk.db.read() as s:
        t0 = runtime._db_now(s, desk)
    e1 = runtime.acquire_lease(desk, holder="frozen", now=t0)
    assert runtime.acquire_lease(desk, holder="standby", now=t0 + runtime.LEASE_TTL / 2) == 0
    e2 = runtime.acquire_lease(desk, holder="standby", now=t0 + LATER)
    assert e2 == e1 + 1
    # the frozen holder wakes up: it cannot renew, and its epoch is dead
    assert runtime.acquire_lease(desk, holder="frozen", now=t0 + LATER) == 0
    assert not runtime.lease_valid(desk, e1, holder="frozen", margin=0)
    with desk.db.read() as s:
        lease = s.get(Lease, "runner")
        assert lease is not None and lease.holder == "standby" and lease.epoch == e2
    assert runtime.TAKEOVER_BOUND <= 15  # the bound README states


def test_lease_valid_follows_the_local_monotonic_clock(
    desk: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    epoch = runtime.acquire_lease(desk, holder="a")
    assert runtime.lease_valid(desk, epoch, holder="a")
    assert not runtime.lease_valid(desk, epoch + 1, holder="a")
    real = runtime.time.monotonic
    # a process frozen past its lease: its clock kept running
    monkeypatch.setattr(
        runtime.time, "monotonic", lambda: real() + runtime.LEASE_TTL.total_seconds()
    )
    assert not runtime.lease_valid(desk, epoch, holder="a")
    monkeypatch.undo()
    runtime.release_lease(desk, holder="a")


def test_a_runner_that_lost_its_lease_cannot_claim_or_mark(desk: Any) -> None:
    [oid] = _queue(desk)
    with desk.db.read() as s:
        t0 = runtime._db_now(s, desk)
    old = runtime.acquire_lease(desk, holder="old", now=t0)
    [item] = runtime.claim_due(desk, epoch=old)
    assert item.outbox_id == oid and _row(desk, oid).claim_epoch == old
    new = runtime.acquire_lease(desk, holder="new", now=t0 + LATER)
    for mark in (
        lambda: runtime.mark_in_flight(desk, oid, old),
        lambda: runtime.mark_sent(desk, oid, ["x"], epoch=old),
        lambda: runtime.mark_failed(desk, oid, "boom", epoch=old),
        lambda: runtime.mark_progress(desk, oid, 1, epoch=old),
        lambda: runtime.claim_due(desk, epoch=old),
    ):
        with pytest.raises(runtime.LeaseLost):
            mark()
    assert _row(desk, oid).state == "sending"
    # the new runner takes the row back: it never got in flight, so it is simply queued again
    assert runtime.reclaim_orphans(desk, new) == 1
    row = _row(desk, oid)
    assert row.state == "queued" and row.claim_epoch is None and row.attempts == 0
    [again] = runtime.claim_due(desk, epoch=new)
    runtime.mark_in_flight(desk, oid, new)
    runtime.mark_sent(desk, oid, ["<id>"], epoch=new)
    assert _row(desk, oid).state == "sent" and again.epoch == new
    runtime.release_lease(desk, holder="new")


def test_the_live_runner_leaves_its_own_claims_alone(desk: Any) -> None:
    [oid] = _queue(desk)
    epoch = runtime.acquire_lease(desk, holder="a")
    runtime.claim_due(desk, epoch=epoch)
    assert runtime.reclaim_orphans(desk, epoch) == 0
    assert _row(desk, oid).state == "sending"
    runtime.release_lease(desk, holder="a")


@pytest.mark.parametrize(
    ("channel", "policy", "expected", "event"),
    [
        ("support", None, "queued", "delivery_resent_in_doubt"),  # e-mail: same Message-ID
        ("support", "ask", "in_doubt", "delivery_in_doubt"),  # the desk wants to decide
        ("telegram", None, "in_doubt", "delivery_in_doubt"),  # no idempotency key: ask
        ("telegram", "resend", "queued", "delivery_resent_in_doubt"),  # the desk's policy
    ],
)
def test_a_claim_interrupted_in_flight(
    desk: Any, channel: str, policy: str | None, expected: str, event: str
) -> None:
    if channel == "telegram":
        with desk.db.write() as s:
            r = ingest(desk, inbound_email(external_id="tgx@x"), historical=True)
            t = s.get(Ticket, r.ticket_id)
            assert t is not None
            t.channel, t.kind, t.reply_to_address = "telegram", "telegram", "555"
            s.add(t)
        with desk.db.write() as s:
            m = ob.queue_outbound(s, desk, s.get(Ticket, r.ticket_id), "привет", agent="alice")
            oid = int(s.exec(select(Outbox).where(Outbox.message_id == m.id)).one().id or 0)
    else:
        [oid] = _queue(desk)
    with desk.db.read() as s:
        t0 = runtime._db_now(s, desk)
    old = runtime.acquire_lease(desk, holder="old", now=t0)
    runtime.claim_due(desk, epoch=old)
    runtime.mark_in_flight(desk, oid, old)  # then the runner froze or died
    new = runtime.acquire_lease(desk, holder="new", now=t0 + LATER)
    idempotent = {"support": True, "telegram": False}
    runtime.reclaim_orphans(
        desk, new, idempotent=idempotent, policy={channel: policy} if policy else {}
    )
    row = _row(desk, oid)
    assert row.state == expected and row.in_flight_at is None and row.claim_epoch is None
    with desk.db.read() as s:
        kinds = [e.kind for e in s.exec(select(Event)).all() if f'"outbox_id": {oid}' in e.data]
    assert event in kinds
    if expected == "in_doubt":
        assert runtime.claim_due(desk, epoch=new) == []  # never resent silently
        assert "resend" in row.last_error and "drop" in row.last_error
    runtime.release_lease(desk, holder="new")


def test_a_send_that_may_have_arrived_becomes_in_doubt(desk: Any) -> None:
    [oid] = _queue(desk)
    epoch = runtime.acquire_lease(desk, holder="a")
    runtime.claim_due(desk, epoch=epoch)
    runtime.mark_in_flight(desk, oid, epoch)
    state = runtime.mark_failed(desk, oid, "Telegram did not answer in time.", epoch=epoch,
                                maybe_delivered=True)  # fmt: skip
    assert state == "in_doubt"
    # a failure before the point of no return is an ordinary retry
    [oid2] = _queue(desk, 1, channel="support")[-1:] or [0]
    runtime.claim_due(desk, epoch=epoch)
    assert runtime.mark_failed(desk, oid2, "refused", epoch=epoch, maybe_delivered=True) == (
        "queued"
    )
    runtime.release_lease(desk, holder="a")


def test_backoff_is_honoured(desk: Any) -> None:
    """A failed attempt waits next_attempt_at out; nothing forces `outbox retry` here."""
    [oid] = _queue(desk)
    epoch = runtime.acquire_lease(desk, holder="a")
    runtime.claim_due(desk, epoch=epoch)
    assert runtime.mark_failed(desk, oid, "451 greylisted", epoch=epoch) == "queued"
    due = _row(desk, oid).next_attempt_at
    assert due is not None and due > utcnow()
    assert runtime.claim_due(desk, epoch=epoch) == []
    assert runtime.claim_due(desk, epoch=epoch, now=due - timedelta(seconds=1)) == []
    [item] = runtime.claim_due(desk, epoch=epoch, now=due + timedelta(seconds=1))
    assert item.outbox_id == oid and item.attempts == 2
    # a longer Retry-After from the peer wins over the backoff
    runtime.mark_failed(desk, oid, "429", epoch=epoch, retry_after=3600)
    assert _row(desk, oid).next_attempt_at > utcnow() + timedelta(minutes=59)  # type: ignore[operator]
    runtime.release_lease(desk, holder="a")


def test_outbox_resend_and_drop_decide_in_doubt_items(desk: Any, cli: Any) -> None:
    a, b = _queue(desk, 2)
    with desk.db.write() as s:
        for oid in (a, b):
            row = s.get(Outbox, oid)
            assert row is not None
            row.state = "in_doubt"
            s.add(row)
    listed = cli("outbox", "list", "--state", "in_doubt", "--json")
    assert listed.exit_code == 0 and {r["id"] for r in json.loads(listed.stdout)} == {
        a,
        b,
    }
    status = cli("status", "--json")
    assert status.exit_code == 0 and json.loads(status.stdout)["outbox"]["in_doubt"] == 2
    assert "2 in doubt" in cli("status").stdout
    for verb in ("retry", "cancel"):
        res = cli("outbox", verb, str(a))
        assert res.exit_code == 5 and "outbox resend" in res.stderr, res.output
    assert cli("outbox", "resend", str(a)).exit_code == 0
    assert cli("outbox", "drop", str(b)).exit_code == 0
    assert _row(desk, a).state == "queued" and _row(desk, b).state == "dropped"
    res = cli("outbox", "drop", str(a))
    assert res.exit_code == 5 and "not in doubt" in res.stderr
    assert cli("outbox", "list", "--state", "bogus").exit_code != 0
    with desk.db.read() as s:
        kinds = {e.kind for e in s.exec(select(Event)).all()}
    assert {"outbox_resend", "outbox_drop"} <= kinds
