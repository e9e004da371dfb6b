"""Delivering the outbox through the channels, under the fenced lease (runner/state.py).

Each channel's worker claims one row at a time under the runner's lease epoch, checks the lease
right before the send's point of no return (``OutboundMessage.fence``: the end of SMTP DATA,
each Bot API request), and commits the delivery as soon as the channel confirms it. A crash
after the point of no return leaves the row in the air: a channel whose resend cannot deliver
twice (e-mail's Message-ID) sends it again; elsewhere it is "in doubt" for an agent (or the
channel's ``in_doubt = "resend"`` policy). After a connection failure a channel's deliveries
pause (its circuit breaker) instead of running every queued row into the same timeout.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from supportdesk.channels.base import (
    Attachment,
    Channel,
    ChannelError,
    OutboundMessage,
    SendAborted,
    SendError,
)
from supportdesk.channels.registry import channel_class
from supportdesk.core.config import ConfigError
from supportdesk.desk.desk import Desk
from supportdesk.inbound.ack import finish_held
from supportdesk.runner import state as runtime
from supportdesk.runner.report import PassReport

log = logging.getLogger("supportdesk.runner.delivery")


class Breaker:
    """A channel's circuit breaker: after a connection failure its deliveries pause (1, 2, 4 ...
    up to 30 s, with jitter) instead of running every queued row into the same timeout; then one
    row tries again (half-open), and a success closes it."""

    def __init__(self) -> None:
        self.failures = 0
        self.open_until = 0.0

    def allows(self) -> bool:
        return time.monotonic() >= self.open_until

    def remaining(self) -> float:
        return max(self.open_until - time.monotonic(), 0.0)

    def failed(self) -> float:
        self.failures += 1
        wait = runtime.reconnect_delay(self.failures)
        self.open_until = time.monotonic() + wait
        return wait

    def succeeded(self) -> None:
        self.failures = 0
        self.open_until = 0.0


def outbound_message(
    desk: Desk, item: runtime.Claimed, kind: str, fence: Callable[[], None] | None
) -> OutboundMessage:
    """The channel's view of a claimed outbox row (attachments read from the desk's home)."""
    atts = []
    for filename, rel, ctype in item.attachments:
        try:
            data = (desk.home / rel).read_bytes()
        except OSError:
            continue
        atts.append(Attachment(filename=filename, content_type=ctype, data=data, size=len(data)))
    extra: dict[str, Any] = {}
    if item.payload.get("buttons"):
        extra["buttons"] = item.payload["buttons"]
    if item.sent_parts:
        extra["skip_parts"] = item.sent_parts
    extra["outbox_id"] = item.outbox_id  # VK derives its random_id (idempotency) from it
    # a provider-approved template (WhatsApp outside its window) and the window's deadline
    for key in ("approved_template", "template_params", "window_closes_at"):
        if item.payload.get(key):
            extra[key] = item.payload[key]
    return OutboundMessage(
        kind=kind,
        to_address=item.to_address,
        text=item.text,
        subject=item.subject,
        to_name=str(item.payload.get("to_name", item.to_name)),
        cc=list(item.payload.get("cc") or []),
        bcc=list(item.payload.get("bcc") or []),
        message_id=item.message_id,
        in_reply_to=item.in_reply_to,
        references=item.references,
        attachments=atts,
        html=item.payload.get("html") or None,
        auto=item.auto,
        extra=extra,
        fence=fence,
    )


class Delivery:
    """The runner's outbound side: its lease epoch, the breakers, claim-send-mark."""

    def __init__(
        self,
        desk: Desk,
        holder: str,
        on_event: Callable[[str, dict[str, Any]], None],
        stop: threading.Event,
    ) -> None:
        self.desk = desk
        self.holder = holder
        self.on_event = on_event
        self.stop = stop
        self.epoch = 0  # the runner lease epoch held (a fencing token); 0 = standing by
        self.breakers: dict[str, Breaker] = {}

    def lease_lost(self) -> None:
        """The lease went to another runner (said by the keeper's thread during a pass): stop
        sending and fetching; the new holder takes back whatever was claimed."""
        self.epoch = 0

    def breaker(self, channel: str) -> Breaker:
        return self.breakers.setdefault(channel, Breaker())

    def idempotent(self) -> dict[str, bool]:
        """Channels whose resend cannot deliver twice (e-mail keeps its Message-ID)."""
        return {
            c.name: channel_class(c.type).capabilities.idempotent_send
            for c in self.desk.config.channel
        }

    def in_doubt_policy(self) -> dict[str, str]:
        return {c.name: c.in_doubt for c in self.desk.config.channel if c.in_doubt}

    def resend_in_doubt(self, channel: str) -> bool:
        """The channel's ``in_doubt`` policy; unset: resend where it cannot deliver twice."""
        policy = self.in_doubt_policy()
        if channel in policy:
            return policy[channel] == "resend"
        return self.idempotent().get(channel, False)

    def reclaim(self) -> int:
        """Take back rows claimed under an epoch that is no longer live (see runner/state.py)."""
        n = runtime.reclaim_orphans(
            self.desk, self.epoch, idempotent=self.idempotent(), policy=self.in_doubt_policy()
        )
        if n:
            log.warning("%d outbox item(s) were left in the air by a runner that stopped", n)
        finish_held(self.desk)  # acknowledgements a stopped process left held
        return n

    def fence(self, item: runtime.Claimed) -> Callable[[], None]:
        """Right before a send's point of no return: this runner must still hold the claim's
        epoch (by its own clock, then in the database, where the row is marked in flight)."""

        def fence() -> None:
            if not runtime.lease_valid(self.desk, item.epoch, holder=self.holder):
                raise SendAborted("this runner's lease ran out; the live runner sends it")
            try:
                runtime.mark_in_flight(self.desk, item.outbox_id, item.epoch)
            except runtime.LeaseLost as exc:
                raise SendAborted(f"this runner lost the lease ({exc})") from None
            except Exception as exc:  # the database is unreachable: do not send blind
                raise SendAborted(f"the send could not be recorded first: {exc}") from None
            if not runtime.lease_valid(self.desk, item.epoch, holder=self.holder):
                raise SendAborted("this runner's lease ran out; the live runner sends it")

        return fence

    async def send_due(self, chans: dict[str, Channel], rep: PassReport, *, limit: int) -> int:
        """Send up to ``limit`` due rows of ``chans``, one claim at a time. Stops at once when
        this runner's lease epoch is no longer live. Returns how many rows it claimed."""
        done = 0
        for _ in range(limit):
            if not self.epoch or self.stop.is_set():
                break
            ready = [n for n in chans if self.breaker(n).allows()]
            if not ready:
                break
            try:
                claimed = await asyncio.to_thread(
                    runtime.claim_due, self.desk, epoch=self.epoch, channels=ready
                )
            except runtime.LeaseLost:
                log.warning("runner lease lost; not sending")
                break
            if not claimed:
                break
            item = claimed[0]
            done += 1
            if not await self.deliver(chans[item.channel], item, rep):
                break  # refused by the fence: the next rows would be refused too
        return done

    async def deliver(self, channel: Channel, item: runtime.Claimed, rep: PassReport) -> bool:
        """Send one claimed row and record the outcome (sent, retry later, failed, in doubt).
        False when the fence refused the send (this runner's lease is gone or running out):
        the row is queued again as it was (``_refused``) and the caller stops its batch."""
        fence = self.fence(item)
        msg = outbound_message(self.desk, item, channel.identity_kind, fence)
        try:
            if not channel.capabilities.fenced_send:
                # the channel cannot tell its point of no return: all of send() is in flight
                await asyncio.to_thread(fence)
            result = await channel.send(msg)
        except SendAborted as exc:
            await asyncio.to_thread(self._refused, item, exc)
            return False
        except SendError as exc:
            await asyncio.to_thread(self._failed, item, exc, exc.sent_parts or None, rep)
            return True
        except (ChannelError, ConfigError) as exc:
            await asyncio.to_thread(self._failed, item, SendError(str(exc)), None, rep)
            return True
        ids = result.external_ids or ([item.message_id] if item.message_id else [])
        await asyncio.to_thread(self._sent, item, ids, rep)
        return True

    def _refused(self, item: runtime.Claimed, exc: SendAborted) -> None:
        """Nothing of the refused send is in the air (the parts before it were confirmed): the
        row is queued again, without counting an attempt, while this runner's epoch is still
        the live one; otherwise the live runner takes it back (``reclaim_orphans``)."""
        log.warning("outbox %s not sent: %s", item.outbox_id, exc)
        try:
            runtime.mark_refused(
                self.desk,
                item.outbox_id,
                str(exc),
                epoch=item.epoch,
                sent_parts=max(exc.sent_parts, item.sent_parts),
            )
        except runtime.LeaseLost:
            log.info("outbox %s is left to the live runner", item.outbox_id)
        except Exception:  # the database is unreachable: the next holder takes it back
            log.exception("queueing outbox %s again", item.outbox_id)

    def _sent(self, item: runtime.Claimed, external_ids: list[str], rep: PassReport) -> None:
        self.breaker(item.channel).succeeded()
        try:
            runtime.mark_sent(self.desk, item.outbox_id, external_ids, epoch=item.epoch)
        except runtime.LeaseLost:
            log.warning("outbox %s was sent but this runner lost the lease first", item.outbox_id)
            return
        rep.outbox_sent += 1
        self.on_event("delivered", {"outbox_id": item.outbox_id, "ticket_id": item.ticket_id})

    def _failed(
        self, item: runtime.Claimed, exc: SendError, sent_parts: int | None, rep: PassReport
    ) -> None:
        if exc.connection:
            wait = self.breaker(item.channel).failed()
            log.warning("channel %s: %s; deliveries pause %.0f s", item.channel, exc, wait)
            try:
                runtime.record_error(self.desk, item.channel, str(exc))
            except Exception:
                log.exception("recording the channel error")
        else:
            self.breaker(item.channel).succeeded()  # the channel answered
        try:
            state = runtime.mark_failed(
                self.desk,
                item.outbox_id,
                str(exc),
                epoch=item.epoch,
                permanent=exc.permanent,
                retry_after=exc.retry_after,
                sent_parts=sent_parts,
                maybe_delivered=exc.maybe_delivered,
                resend_in_doubt=self.resend_in_doubt(item.channel),
            )
        except runtime.LeaseLost:
            log.warning("outbox %s: %s (this runner lost the lease meanwhile)", item.outbox_id, exc)
            return
        if state == "failed":
            rep.outbox_failed += 1
        else:
            rep.outbox_retrying += 1
        log.warning("outbox %s: %s", item.outbox_id, exc)
