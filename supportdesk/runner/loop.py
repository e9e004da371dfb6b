"""The runner: fetch inbound, deliver the outbox, run the timers.

``Runner.run_once()`` is ``supportdesk poll --once``; ``Runner.run_forever()`` is
``supportdesk run``. Under ``run``, one asyncio loop runs, per configured channel, a fetch loop
per cursor key (IMAP folders with IDLE, Telegram long polling) or the channel's ``serve`` (push
channels), and one delivery worker (a slow peer delays only its own channel); plus the SLA and
snooze timers. A delivery worker claims due replies as soon as one is queued, in this process
(``_stored``) or in another (an agent's console, the CLI: the store's ``OutboxWaker``), and
every ``OUTBOX_POLL`` seconds otherwise. Nothing here branches on a channel's type: every
channel is a :class:`~supportdesk.channels.base.Channel` found through the registry.

Only the holder of the desk's runner lease works; a second runner waits and takes over within
seconds when the first one dies.

Exactly once inbound: a batch of inbound messages is committed together with its cursor (the
one inbound pipeline), and confirmed to the channel (Telegram's offset) only after that commit.
Outbound runs under the fenced lease, one claim at a time, with a circuit breaker per channel
(runner/delivery.py).

Long because: the loops ``run`` starts (fetching per cursor key, delivery per channel, the
push workers, the timers) share one Runner's lease, wake-ups and stop event.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from supportdesk.automation import hook as automation_hook
from supportdesk.channels.base import Channel, ChannelError, Stored
from supportdesk.channels.registry import is_push, make_channel
from supportdesk.core.config import ChannelConfigBase, ConfigError
from supportdesk.core.strict import read_trusted_config
from supportdesk.desk.desk import Conflict, Desk
from supportdesk.inbound.ack import finish_held
from supportdesk.runner import state as runtime
from supportdesk.runner.delivery import Delivery
from supportdesk.runner.fetching import Fetcher
from supportdesk.runner.keeper import heartbeat, kept
from supportdesk.runner.push import PushWorker
from supportdesk.runner.report import ChannelReport, PassReport
from supportdesk.sla import clocks as sla
from supportdesk.store.models import Lease, utcnow
from supportdesk.store.wake import OutboxWaker
from supportdesk.tickets import snooze

log = logging.getLogger("supportdesk.runner.loop")

FETCH_TIMEOUT = 10.0  # seconds a channel may long-poll inside fetch() under `run`
POLL_WAIT = 5.0  # seconds a channel whose wait() just sleeps waits between fetches
OUTBOX_BATCH = 50  # outbox rows claimed at a time
# a delivery worker's look at the outbox when nothing woke it: the fallback, since replies
# queued by other processes wake it through the store's OutboxWaker (store/wake.py)
OUTBOX_POLL = 1.0
TIMER_EVERY = 5.0  # seconds between timer runs (snoozes, automation, notifications)
SLA_EVERY = 60.0  # between SLA passes under `run` (from the watermark: ~7 ms idle at 1M)
ACK_STALE = timedelta(seconds=10)  # intake releases its own acks a second after its commit


class Runner:
    def __init__(
        self,
        desk: Desk,
        *,
        channels: list[str] | None = None,
        holder: str | None = None,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ):
        # strict modes: the config (and every program it runs) must be the runner's own
        desk.config = read_trusted_config(desk.home)
        self.desk = desk
        self.only = channels
        self.holder = holder or runtime.holder_id()
        self.stop_event = threading.Event()
        self.active = threading.Event()
        self.on_event = on_event or (lambda kind, data: None)
        self.delivery = Delivery(self.desk, self.holder, self._event, self.stop_event)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._wakeups: dict[str, asyncio.Event] = {}
        self.push_workers: list[PushWorker] = []
        self.waker: OutboxWaker | None = None  # the active runner's (store/wake.py)
        self._next_nps = datetime.min.replace(tzinfo=UTC)  # NPS surveys: once a minute

    # ---- configuration ------------------------------------------------------------------
    def channels(self) -> list[ChannelConfigBase]:
        chans = self.desk.config.channel
        if self.only:
            for name in self.only:
                self.desk.config.channel_named(name)  # raises ConfigError for an unknown name
            chans = [c for c in chans if c.name in self.only]
        return chans

    def worked(self) -> list[ChannelConfigBase]:
        """The channels this loop fetches and delivers for; a push channel (the website) runs
        in a PushWorker of its own (runner/push.py), and only under `run`."""
        return [c for c in self.channels() if not is_push(c.type)]

    @property
    def epoch(self) -> int:
        """The runner lease epoch held (a fencing token); 0 = standing by."""
        return self.delivery.epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        self.delivery.epoch = value

    def _event(self, kind: str, data: dict[str, Any]) -> None:
        self.on_event(kind, data)

    def _make(self, cfg: ChannelConfigBase) -> Channel:
        return make_channel(cfg, home=self.desk.home, desk_name=self.desk.config.desk.name)

    def _stored(self, stored: list[Stored]) -> None:
        for r in stored:
            if r.outcome in ("new_ticket", "joined"):
                self.on_event("message", {"ticket_id": r.ticket_id, "outcome": r.outcome})
        if stored:  # acknowledgements and greetings may be waiting
            for ev in self._wakeups.values():
                ev.set()

    # ---- timers -------------------------------------------------------------------------
    def tick(self, *, sla_pass: bool = True) -> None:
        """SLA breaches (unless not ``sla_pass``), snoozed tickets waking, NPS surveys due."""
        now = utcnow()
        if sla_pass:
            sla.tick_in_batches(self.desk, now, stop=self.stop_event)
        with self.desk.db.write() as s:
            snooze.wake_snoozed(s, self.desk, now)
            if self.desk.config.nps.every and now >= self._next_nps:
                from supportdesk.replies import nps

                nps.send_due(s, self.desk, now)
                self._next_nps = now + timedelta(minutes=1)
        automation_hook.on_timer_tick(self.desk)  # rules, notifications, routing timers
        finish_held(self.desk, older_than=ACK_STALE)  # acks a process that stopped left held

    # ---- one pass -----------------------------------------------------------------------
    def run_once(self, *, fetch_timeout: float = 0) -> PassReport:
        """One pass under the runner lease (refused while another runner is active)."""
        self.epoch = runtime.acquire_lease(self.desk, holder=self.holder)
        if not self.epoch:
            with self.desk.db.read() as s:
                lease = s.get(Lease, "runner")
                who = f"{lease.holder}" if lease else "another process"
            raise Conflict(
                f"a runner is already active ({who}); it fetches and sends for this desk"
            )
        try:
            # renewed all through the pass, which may outlast the lease (runner/keeper.py)
            with kept(self.desk, self.holder, self.epoch, self.delivery.lease_lost):
                self.delivery.reclaim()
                return asyncio.run(self._pass(fetch_timeout))
        finally:
            runtime.release_lease(self.desk, holder=self.holder)
            self.epoch = 0

    async def _pass(self, fetch_timeout: float) -> PassReport:
        rep = PassReport()
        chans = {cfg.name: self._make(cfg) for cfg in self.worked()}
        try:
            for ch in chans.values():
                keys = ch.cursor_keys()
                if not keys or not self.epoch:
                    continue  # send-only or push: nothing to poll in a pass; or the lease is gone
                crep = ChannelReport(ch.name)
                fetcher = Fetcher(self.desk, ch, self._stored)
                try:
                    await ch.open()
                    for key in keys:
                        await fetcher.drain(key, crep, timeout=fetch_timeout)
                    await asyncio.to_thread(runtime.record_success, self.desk, ch.name)
                except (ChannelError, ConfigError) as exc:
                    crep = ChannelReport(ch.name, error=str(exc))
                    await asyncio.to_thread(runtime.record_error, self.desk, ch.name, str(exc))
                rep.channels.append(crep)
            await self.delivery.send_due(chans, rep, limit=OUTBOX_BATCH)
        finally:
            for ch in chans.values():
                await _close(ch)
        if self.epoch:  # the timers are the lease holder's work too
            await asyncio.to_thread(self.tick)
        return rep

    def send_outbox(
        self, *, limit: int = OUTBOX_BATCH, channels: list[str] | None = None
    ) -> PassReport:
        """Send up to ``limit`` due rows (under the epoch this runner holds), outside a pass."""
        return asyncio.run(self._send_outbox(limit, channels))

    async def _send_outbox(self, limit: int, channels: list[str] | None) -> PassReport:
        rep = PassReport()
        cfgs = [c for c in self.worked() if channels is None or c.name in channels]
        chans = {cfg.name: self._make(cfg) for cfg in cfgs}
        try:
            await self.delivery.send_due(chans, rep, limit=limit)
        finally:
            for ch in chans.values():
                await _close(ch)
        return rep

    # ---- continuous ---------------------------------------------------------------------
    def run_forever(self, *, lease_poll: float = runtime.HEARTBEAT) -> None:
        asyncio.run(self._forever(lease_poll))

    def stop(self) -> None:
        """Stop run_forever soon; thread-safe (and safe from a signal handler)."""
        self.stop_event.set()
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:  # the loop just closed
                pass

    async def _forever(self, lease_poll: float) -> None:
        loop = asyncio.get_running_loop()
        # IMAP IDLE waits hold a thread each: a pool that outnumbers the folders
        loop.set_default_executor(ThreadPoolExecutor(32, thread_name_prefix="runner"))
        self._stopping = asyncio.Event()
        self._loop = loop
        if self.stop_event.is_set():
            self._stopping.set()
        chans: list[Channel] = []
        tasks: list[asyncio.Task[None]] = []
        pushers = self._start_push()
        try:
            while not self._stopping.is_set():
                epoch = await asyncio.to_thread(heartbeat, self.desk, self.holder) or 0
                if epoch and epoch != self.epoch:
                    if self.active.is_set():
                        log.warning("runner lease lost and taken again (epoch %d)", epoch)
                    log.info("runner active (%s, epoch %d)", self.holder, epoch)
                    self.epoch = epoch
                    try:
                        await asyncio.to_thread(self.delivery.reclaim)
                    except Exception:
                        log.exception("reclaiming the outbox")
                    if not self.active.is_set():
                        self.active.set()
                        chans, tasks = self._start()
                    for ev in self._wakeups.values():
                        ev.set()
                elif not epoch and self.active.is_set():
                    log.warning("runner lease lost; standing by")
                    self.epoch = 0
                    self.active.clear()
                    await _halt(chans, tasks)
                    chans, tasks = [], []
                try:
                    await asyncio.wait_for(self._stopping.wait(), lease_poll)
                except TimeoutError:
                    pass
        finally:
            self.stop_event.set()  # the push workers stop too
            await _halt(chans, tasks)
            for t in pushers:
                await asyncio.to_thread(t.join, 5)
            if self.active.is_set():
                await asyncio.to_thread(runtime.release_lease, self.desk, holder=self.holder)
            self.epoch = 0
            self._loop = None

    def _start_push(self) -> list[threading.Thread]:
        """A PushWorker thread per push channel: it serves and delivers while this runner
        holds the lease (``active``), and stops with the runner."""
        threads = []
        for cfg in self.channels():
            if not is_push(cfg.type):
                continue
            worker = PushWorker(
                self.desk,
                cfg,
                active=self.active,
                stop=self.stop_event,
                on_event=self.on_event,
                wake_outbox=self.wake_outbox,
                epoch=lambda: self.epoch,
            )
            self.push_workers.append(worker)
            t = threading.Thread(target=worker.run, name=f"push:{cfg.name}", daemon=True)
            t.start()
            threads.append(t)
        return threads

    def wake_outbox(self) -> None:
        """Wake every delivery worker (thread-safe): replies may be waiting."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._wake_all)
            except RuntimeError:  # the loop just closed
                pass

    def _wake_all(self) -> None:
        for ev in self._wakeups.values():
            ev.set()

    def _wake_due(self, channels: set[str] | None) -> None:
        """From the OutboxWaker's thread: due rows on ``channels`` (None: maybe any)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._wake_channels, channels)
            except RuntimeError:  # the loop just closed
                pass
        for worker in self.push_workers:
            if channels is None or worker.config.name in channels:
                try:
                    worker.wake()
                except RuntimeError:  # its loop just closed
                    pass

    def _wake_channels(self, channels: set[str] | None) -> None:
        for name, ev in self._wakeups.items():
            if channels is None or name in channels:
                ev.set()

    async def _outbox_waker(self) -> None:
        """While this runner is active: wake the delivery workers when another process queues
        a reply (store/wake.py). Their poll stays the fallback: a lost wake-up delays a reply,
        it never loses one."""
        waker = OutboxWaker(self.desk.db, self._wake_due)
        self.waker = waker
        thread = threading.Thread(target=waker.run, name="outbox-wake", daemon=True)
        thread.start()
        try:
            await asyncio.Event().wait()  # until cancelled (_halt)
        finally:
            waker.stop()
            await asyncio.to_thread(thread.join, 5)

    def _start(self) -> tuple[list[Channel], list[asyncio.Task[None]]]:
        """Per polled channel: a fetch loop per cursor key, and one delivery worker."""
        chans = [self._make(cfg) for cfg in self.worked()]
        tasks: list[asyncio.Task[None]] = []
        self._wakeups = {ch.name: asyncio.Event() for ch in chans}
        for ch in chans:
            keys = ch.cursor_keys()
            for key in keys:
                tasks.append(asyncio.create_task(self._guard(ch, self._follow(ch, key))))
            tasks.append(asyncio.create_task(self._deliver_loop(ch)))
        tasks.append(asyncio.create_task(self._timer_loop()))
        tasks.append(asyncio.create_task(self._outbox_waker()))
        return chans, tasks

    def _follow(self, ch: Channel, key: str) -> Callable[[], Awaitable[None]]:
        fetcher = Fetcher(self.desk, ch, self._stored)

        def healthy() -> None:
            runtime.record_success(self.desk, ch.name)

        return lambda: fetcher.follow(key, timeout=FETCH_TIMEOUT, wait=POLL_WAIT, healthy=healthy)

    async def _guard(self, ch: Channel, work: Callable[[], Awaitable[None]]) -> None:
        """Run a channel's fetch loop until cancelled: errors are recorded for
        `status` and retried with a growing pause."""
        backoff = 1.0
        while True:
            try:
                await ch.open()
                await work()
                return
            except (ChannelError, ConfigError) as exc:
                wait = await asyncio.to_thread(runtime.record_error, self.desk, ch.name, str(exc))
                pause = min(max(backoff, 1.0), wait.total_seconds())
                await asyncio.sleep(pause * random.uniform(0.75, 1.0))
            except Exception as exc:  # keep the loop alive; the error is visible in status
                log.exception("channel %s", ch.name)
                error = f"{type(exc).__name__}: {exc}"
                await asyncio.to_thread(runtime.record_error, self.desk, ch.name, error)
                await asyncio.sleep(backoff * random.uniform(0.75, 1.0))
            backoff = min(backoff * 2, runtime.RECONNECT_CAP)

    async def _deliver_loop(self, ch: Channel) -> None:
        """One channel's delivery worker: a hung peer stalls only its own channel."""
        wakeup = self._wakeups[ch.name]
        breaker = self.delivery.breaker(ch.name)
        while True:
            claimed = 0
            try:
                claimed = await self.delivery.send_due(
                    {ch.name: ch}, PassReport(), limit=OUTBOX_BATCH
                )
            except Exception:
                log.exception("outbox of channel %s", ch.name)
            if claimed >= OUTBOX_BATCH:
                continue  # a backlog: claim the next ones at once
            pause = OUTBOX_POLL if breaker.allows() else max(min(breaker.remaining(), 5.0), 1.0)
            try:
                await asyncio.wait_for(wakeup.wait(), pause)
            except TimeoutError:
                pass
            wakeup.clear()

    async def _timer_loop(self) -> None:
        clock, next_sla = asyncio.get_running_loop().time, 0.0  # the SLA pass: once a minute
        while True:
            due = clock() >= next_sla
            next_sla = clock() + SLA_EVERY if due else next_sla
            try:
                await asyncio.to_thread(self.tick, sla_pass=due)
            except Exception:
                log.exception("timers")
            await asyncio.sleep(TIMER_EVERY)


async def _close(ch: Channel) -> None:
    try:
        await ch.close()
    except Exception as exc:  # closing must not hide what happened before
        log.info("closing channel %s: %s", ch.name, exc)


async def _halt(chans: list[Channel], tasks: list[asyncio.Task[None]]) -> None:
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for ch in chans:
        await _close(ch)


def run_desk(
    desk: Desk, *, channels: list[str] | None = None, log_file: Path | None = None
) -> None:
    """`supportdesk run`: until SIGTERM/SIGINT."""
    import signal

    # a frozen runner inside a transaction must not hold the desk's write lock for long
    desk.db.bound_idle_transactions(runtime.IDLE_IN_TRANSACTION)
    runner = Runner(desk, channels=channels)

    def _stop(_sig: int, _frm: Any) -> None:
        runner.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    runner.run_forever()


__all__ = ["ChannelReport", "PassReport", "Runner", "run_desk"]
