"""A channel that cannot tell its point of no return (``Capabilities.fenced_send`` False: VK,
WhatsApp, the website, third-party channels) is fenced by the runner before ``send()``: the row
is in flight for the whole send, so a crash in it is never followed by a silent resend."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, ClassVar

import pytest
from sqlmodel import select

from supportdesk.channels.base import Capabilities, Channel, OutboundMessage, SendResult
from supportdesk.core.config import ChannelConfigBase
from supportdesk.outbound.outbox import queue_outbound
from supportdesk.runner import state as runtime
from supportdesk.runner.delivery import Delivery
from supportdesk.runner.report import PassReport
from supportdesk.store.models import Outbox, Ticket
from tests.factories import inbound_email, ingest


class Probe(Channel):
    type = "probe"
    title = "Probe"
    icon = "p"
    identity_kind = "email"
    config_model = ChannelConfigBase
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, desk: Any, fenced: bool) -> None:
        super().__init__(ChannelConfigBase(name="support", type="probe"), home=desk.home,
                         desk_name="x")  # fmt: skip
        self.desk = desk
        self.capabilities = Capabilities(fenced_send=fenced)  # type: ignore[misc]
        self.seen: list[Any] = []

    async def send(self, msg: OutboundMessage) -> SendResult:
        with self.desk.db.read() as s:  # what a crash right now would leave behind
            row = s.get(Outbox, msg.extra["outbox_id"])
            assert row is not None
            self.seen.append(row.in_flight_at)
        return SendResult(external_ids=["probe-1"])


def _claimed(desk: Any) -> tuple[Delivery, runtime.Claimed]:
    r = ingest(desk, inbound_email(external_id="fence@x"), historical=True)
    with desk.db.write() as s:
        queue_outbound(s, desk, s.get(Ticket, r.ticket_id), "Ответ", agent="alice")
    d = Delivery(desk, "probe-runner", lambda _k, _d: None, threading.Event())
    d.epoch = runtime.acquire_lease(desk, holder="probe-runner")
    [item] = runtime.claim_due(desk, epoch=d.epoch)
    return d, item


@pytest.mark.parametrize("fenced", [False, True])
def test_the_runner_fences_a_channel_that_does_not(desk: Any, fenced: bool) -> None:
    d, item = _claimed(desk)
    probe = Probe(desk, fenced)
    asyncio.run(d.deliver(probe, item, PassReport()))
    # not fenced by the channel: in flight during the whole send; fenced: the channel's business
    assert (probe.seen[0] is not None) is (not fenced)
    with desk.db.read() as s:
        assert s.exec(select(Outbox.state)).one() == "sent"
    runtime.release_lease(desk, holder="probe-runner")


def test_a_runner_without_its_lease_never_calls_send(
    desk: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    d, item = _claimed(desk)
    probe = Probe(desk, fenced=False)
    monkeypatch.setattr(runtime, "lease_valid", lambda *a, **kw: False)  # frozen past the lease
    asyncio.run(d.deliver(probe, item, PassReport()))
    assert probe.seen == []
    with desk.db.read() as s:
        row = s.exec(select(Outbox)).one()
    # refused before anything went out: queued again at once, the attempt not counted
    assert row.state == "queued" and row.in_flight_at is None and row.claim_epoch is None
    assert row.attempts == 0
    runtime.release_lease(desk, holder="probe-runner")
