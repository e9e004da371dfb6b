"""`poll --once` keeps its runner lease for as long as its pass runs (runner/keeper.py), and a
pass that lost it stops sending at once, leaving the rest to the new holder: with the real
test peers (Dovecot and aiosmtpd, the Bot API stand-in) and a lease clock the test moves
(``StepClock``) instead of sleeping through the lease."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from supportdesk.channels.telegram.bot import split_text
from supportdesk.desk.desk import open_desk
from supportdesk.outbound.outbox import queue_outbound
from supportdesk.runner import state as runtime
from supportdesk.runner.loop import Runner
from supportdesk.store.models import Lease, Outbox, Ticket
from tests.factories import inbound_email, ingest
from tests.runner.clock import StepClock
from tests.runner.helpers import setup_email_home, setup_telegram_home

pytestmark = pytest.mark.peers

TAKEN_OVER = runtime.LEASE_TTL + runtime.LEASE_TTL  # the standby's clock: well past the deadline


@pytest.fixture
def clock() -> Iterator[StepClock]:
    with runtime.use_clock(StepClock()) as c:
        assert isinstance(c, StepClock)
        yield c


@pytest.fixture
def edesk(home: Path, imap_account: Any, smtp_sink: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    setup_email_home(home, imap_account, smtp_sink, monkeypatch)
    d = open_desk(home, agent="alice")
    yield d
    d.close()


@pytest.fixture
def tdesk(home: Path, botapi: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    setup_telegram_home(home, botapi, monkeypatch)
    d = open_desk(home, agent="alice")
    yield d
    d.close()


def _replies(desk: Any, n: int) -> list[int]:
    """``n`` agent replies queued on ``n`` tickets (no acknowledgements: historical mail)."""
    ids = []
    for i in range(n):
        r = ingest(desk, inbound_email(external_id=f"renew{i}@example.ru"), historical=True)
        with desk.db.write() as s:
            t = s.get(Ticket, r.ticket_id)
            m = queue_outbound(s, desk, t, f"Ответ номер {i}", agent="alice")
            ids.append(int(s.exec(select(Outbox.id).where(Outbox.message_id == m.id)).one()))
    return ids


def _rows(desk: Any) -> list[Outbox]:
    with desk.db.read() as s:
        return list(s.exec(select(Outbox).order_by(col(Outbox.id))).all())


def _take_over(desk: Any) -> int:
    """Another runner takes the lease, as it would once the holder stopped renewing."""
    with desk.db.read() as s:
        now = runtime._db_now(s, desk)
    epoch = runtime.acquire_lease(desk, holder="standby", now=now + TAKEN_OVER)
    assert epoch
    return epoch


def _each_once(smtp_sink: Any, desk: Any, n: int) -> None:
    """The sink holds every reply exactly once, and every row is sent on its first attempt."""
    ids = Counter(str(m.message["Message-ID"]).strip("<>") for m in smtp_sink.received)
    rows = _rows(desk)
    assert len(rows) == n and all(r.state == "sent" for r in rows)
    assert ids == Counter({r.external_message_id: 1 for r in rows})
    assert [r.attempts for r in rows] == [1] * n  # a refused or reclaimed claim is no attempt


def test_a_pass_longer_than_the_lease_keeps_it_and_sends_everything_once(
    edesk: Any, smtp_sink: Any, clock: StepClock
) -> None:
    _replies(edesk, 6)
    start = clock.monotonic()
    smtp_sink.on("data", lambda: clock.advance(3.0))  # every send takes 3 s: 18 s in all
    rep = Runner(edesk, holder="poll").run_once()
    assert clock.monotonic() - start > 1.5 * runtime.LEASE_TTL.total_seconds()
    assert rep.outbox_sent == 6 and rep.outbox_retrying == 0
    _each_once(smtp_sink, edesk, 6)
    with edesk.db.read() as s:
        lease = s.get(Lease, "runner")
        assert lease is not None and lease.epoch == 1 and lease.holder == "poll"  # never lost


@pytest.mark.parametrize("where", ["between sends", "at the fence"])
def test_a_pass_whose_lease_was_taken_over_stops_sending_at_once(
    edesk: Any, smtp_sink: Any, clock: StepClock, where: str
) -> None:
    """Between sends the keeper hears of it (the pass claims nothing more); at the fence of the
    third send the database refuses it (the DATA never ends, the row is the new holder's)."""
    _replies(edesk, 6)
    taken: list[int] = []
    runner = Runner(edesk, holder="poll")

    def delivered(kind: str, data: dict[str, Any]) -> None:
        if kind == "delivered" and len(smtp_sink.received) == 2 and not taken:
            taken.append(_take_over(edesk))
            clock.advance(1.0)  # the keeper's next renewal finds the lease gone
            assert runner.epoch == 0

    rcpts: list[int] = []

    def rcpt() -> None:
        rcpts.append(1)
        if len(rcpts) == 3:
            taken.append(_take_over(edesk))

    if where == "between sends":
        runner.on_event = delivered
    else:
        smtp_sink.on("rcpt", rcpt)
    rep = runner.run_once()
    assert taken and rep.outbox_sent == 2 and len(smtp_sink.received) == 2
    rows = _rows(edesk)
    assert [r.state for r in rows[:2]] == ["sent", "sent"]
    if where == "at the fence":  # claimed by the old epoch, never in flight: the standby's
        assert rows[2].state == "sending" and rows[2].in_flight_at is None
    rest = rows[3:] if where == "at the fence" else rows[2:]
    assert all(r.state == "queued" and r.attempts == 0 for r in rest)  # never claimed

    smtp_sink.on("rcpt", None)
    rep = Runner(edesk, holder="standby").run_once()  # the new holder's pass
    assert rep.outbox_sent == 4
    _each_once(smtp_sink, edesk, 6)


def test_a_split_telegram_reply_refused_halfway_resumes_at_its_first_unsent_part(
    tdesk: Any, botapi: Any, clock: StepClock, caplog: pytest.LogCaptureFixture
) -> None:
    botapi.push_message(5, "help", user={"id": 5, "first_name": "Bob"})
    Runner(tdesk).run_once()
    greeting = len(botapi.wait_sent(1))
    long = " ".join(f"слово{i}" for i in range(1000))
    expected = split_text(long)
    assert len(expected) == 3  # parts of up to 4096 UTF-16 units
    with tdesk.db.write() as s:
        t = s.exec(select(Ticket)).one()
        queue_outbound(s, tdesk, t, long, agent="alice")
        queue_outbound(s, tdesk, t, "И ещё одно.", agent="alice")

    def first_part(params: dict[str, Any]) -> None:
        if params.get("text", "").startswith("слово0 "):
            clock.jump(runtime.LEASE_TTL.total_seconds() - 1)  # the renewals fell behind

    botapi.hooks["sendMessage"] = first_part
    caplog.set_level(logging.WARNING, logger="supportdesk.runner.delivery")
    rep = Runner(tdesk).run_once()
    refused = [r for r in caplog.records if r.getMessage().startswith("outbox ")]
    assert len(refused) == 1 and "not sent" in refused[0].getMessage()  # the batch stopped
    assert rep.outbox_sent == 0
    sent = botapi.wait_sent(greeting + 1)
    assert len(sent) == greeting + 1 and sent[-1].text == expected[0]
    row, after = [r for r in _rows(tdesk) if r.state != "sent"]
    # refused at the fence of part 2: queued again at once, part 1 kept, no attempt counted
    assert (row.state, row.sent_parts, row.attempts, row.in_flight_at) == ("queued", 1, 0, None)
    # and the next reply was not even claimed
    assert (after.state, after.attempts, after.last_error) == ("queued", 0, "")

    rep = Runner(tdesk).run_once()
    assert rep.outbox_sent == 2
    parts = [m.text for m in botapi.wait_sent(greeting + 4)[greeting:]]
    assert parts == [*expected, "И ещё одно."]  # each part once, in order
    done = {r.id: r for r in _rows(tdesk)}
    assert [(done[r.id].state, done[r.id].attempts) for r in (row, after)] == [("sent", 1)] * 2
