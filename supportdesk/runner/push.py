"""A push channel (the website) under the runner: its server and its delivery worker.

``PushWorker.run()`` runs in a thread of its own with its own event loop. While this runner
holds the desk's lease it runs ``channel.serve(sink)`` (the sink is the one inbound pipeline,
:class:`~supportdesk.inbound.push.DeskSink`) and a delivery worker that claims the channel's
outbox rows and calls ``channel.send``. The worker looks for new rows every ``poll`` seconds
(a reply queued by the CLI or another console is another process) and at once when this
process queues one. When the lease is lost the listener closes, so a standby runner never holds
the port.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from supportdesk.channels.base import Channel, ChannelError, OutboundMessage, SendError
from supportdesk.channels.registry import make_channel
from supportdesk.core.config import ChannelConfigBase, ConfigError
from supportdesk.desk.desk import Desk
from supportdesk.inbound.push import DeskSink
from supportdesk.runner import state as runtime

log = logging.getLogger("supportdesk.runner.push")

POLL = 0.1  # seconds between looks at the outbox for replies queued by other processes
CLAIM = 200  # outbox rows claimed at once
MAX_INFLIGHT = 2000  # sends waiting for a widget's confirmation at most


class PushWorker:
    def __init__(
        self,
        desk: Desk,
        config: ChannelConfigBase,
        *,
        active: threading.Event,
        stop: threading.Event,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        wake_outbox: Callable[[], None] | None = None,
        epoch: Callable[[], int] = lambda: 0,
        poll: float = POLL,
    ) -> None:
        self.desk = desk
        self.config = config
        self.active = active
        self.stop = stop
        self.on_event = on_event or (lambda kind, data: None)
        self.wake_outbox = wake_outbox or (lambda: None)
        self.poll = poll
        self.epoch = epoch  # the runner's live lease epoch (a fencing token); 0 = standing by
        self.channel: Channel | None = None
        self.ready = threading.Event()  # set while the channel is serving
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def run(self) -> None:
        asyncio.run(self.main())

    def wake(self) -> None:
        """Look at the outbox now (a reply was queued in this process)."""
        loop, ev = self._loop, self._wake
        if loop is not None and ev is not None:
            loop.call_soon_threadsafe(ev.set)

    async def main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        backoff = 1.0
        while not self.stop.is_set():
            if not self.active.is_set():
                await asyncio.to_thread(self.active.wait, 0.5)
                continue
            try:
                await self._serve_while_active()
                backoff = 1.0
                await asyncio.to_thread(self.stop.wait, 0.5)  # never a busy loop
            except (ChannelError, ConfigError) as exc:
                runtime.record_error(self.desk, self.config.name, str(exc))
                await asyncio.to_thread(self.stop.wait, backoff)
                backoff = min(backoff * 2, 60)
            except Exception as exc:  # keep the channel alive; the error shows in status
                log.exception("push channel %s", self.config.name)
                runtime.record_error(self.desk, self.config.name, f"{type(exc).__name__}: {exc}")
                await asyncio.to_thread(self.stop.wait, backoff)
                backoff = min(backoff * 2, 60)

    async def _serve_while_active(self) -> None:
        ch = make_channel(self.config, home=self.desk.home, desk_name=self.desk.config.desk.name)
        await ch.open()
        self.channel = ch
        sink = DeskSink(
            self.desk,
            channel=self.config.name,
            on_event=self.on_event,
            wake_outbox=self.wake_outbox,
        )
        serve = asyncio.create_task(ch.serve(sink))
        deliver = asyncio.create_task(self._deliver(ch))
        ready = getattr(ch, "ready", None)
        try:
            if isinstance(ready, asyncio.Event):
                waiter = asyncio.create_task(ready.wait())
                await asyncio.wait({serve, waiter}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
            if serve.done():
                serve.result()  # raises what stopped it (a port in use)
            runtime.record_success(self.desk, self.config.name, polled=False)
            self.ready.set()
            while self.active.is_set() and not self.stop.is_set() and not serve.done():
                await asyncio.to_thread(self.stop.wait, 0.5)
            if serve.done():
                serve.result()
        finally:
            self.ready.clear()
            for t in (serve, deliver):
                t.cancel()
            await asyncio.gather(serve, deliver, return_exceptions=True)
            await ch.close()
            self.channel = None

    async def _deliver(self, ch: Channel) -> None:
        """Claim due rows and send them concurrently; a pushed reply waits for the widget's
        confirmation, so sends overlap and their results are recorded in batches."""
        assert self._wake is not None
        done: asyncio.Queue[tuple[runtime.Claimed, list[str] | BaseException]] = asyncio.Queue()
        marker = asyncio.create_task(self._record(done))
        inflight: set[asyncio.Task[None]] = set()
        try:
            while True:
                claimed: list[runtime.Claimed] = []
                epoch = self.epoch()
                if epoch and len(inflight) < MAX_INFLIGHT:
                    try:
                        claimed = await asyncio.to_thread(
                            runtime.claim_due,
                            self.desk,
                            epoch=epoch,
                            channels=[self.config.name],
                            limit=CLAIM,
                        )
                    except runtime.LeaseLost:
                        claimed = []  # the lease loop notices and stops this channel
                    except Exception:
                        log.exception("claiming the outbox of %s", self.config.name)
                for item in claimed:
                    task = asyncio.create_task(self._send(ch, item, done))
                    inflight.add(task)
                    task.add_done_callback(inflight.discard)
                if len(claimed) < CLAIM:
                    try:
                        await asyncio.wait_for(self._wake.wait(), self.poll)
                    except TimeoutError:
                        pass
                    self._wake.clear()
        finally:
            for task in inflight:
                task.cancel()
            marker.cancel()
            await asyncio.gather(*inflight, marker, return_exceptions=True)

    async def _send(
        self,
        ch: Channel,
        item: runtime.Claimed,
        done: asyncio.Queue[tuple[runtime.Claimed, list[str] | BaseException]],
    ) -> None:
        out = OutboundMessage(
            kind=item.kind,
            to_address=item.to_address,
            text=item.text,
            subject=item.subject,
            to_name=item.to_name,
            message_id=item.message_id,
            auto=item.auto,
            extra=dict(item.payload),
        )
        try:
            if not ch.capabilities.idempotent_send:
                # past this point a resend could deliver twice: recorded, so a crash leaves the
                # row "in doubt" instead of sending it again blindly
                await asyncio.to_thread(
                    runtime.mark_in_flight, self.desk, item.outbox_id, item.epoch
                )
            res = await ch.send(out)
        except runtime.LeaseLost:
            return  # the claim is gone; the new lease holder sends it
        except (SendError, ChannelError) as exc:
            done.put_nowait((item, exc))
            return
        done.put_nowait((item, res.external_ids or [item.message_id]))

    async def _record(
        self, done: asyncio.Queue[tuple[runtime.Claimed, list[str] | BaseException]]
    ) -> None:
        while True:
            batch = [await done.get()]
            while not done.empty():
                batch.append(done.get_nowait())
            by_epoch: dict[int, list[tuple[int, list[str]]]] = {}
            for item, r in batch:
                if isinstance(r, list):
                    by_epoch.setdefault(item.epoch, []).append((item.outbox_id, r))
            try:
                for epoch, sent in by_epoch.items():
                    await asyncio.to_thread(runtime.mark_sent_many, self.desk, sent, epoch=epoch)
                for item, r in batch:
                    if isinstance(r, list):
                        self.on_event(
                            "delivered", {"outbox_id": item.outbox_id, "ticket_id": item.ticket_id}
                        )
                    else:
                        await asyncio.to_thread(
                            runtime.mark_failed,
                            self.desk,
                            item.outbox_id,
                            str(r),
                            epoch=item.epoch,
                            permanent=isinstance(r, SendError) and r.permanent,
                            retry_after=r.retry_after if isinstance(r, SendError) else None,
                        )
            except Exception:  # the claim expires and the row is sent again (same message id)
                log.exception("recording deliveries on %s", self.config.name)
