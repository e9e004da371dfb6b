"""The runner: fetch inbound, send the outbox, run the timers.

``Runner.run_once()`` is ``supportdesk poll --once``; ``Runner.run_forever()`` is
``supportdesk run``: IMAP IDLE per folder (with a periodic UID poll as the source of truth),
Telegram long polling, the outbox and the SLA/snooze timers, each in its own thread. Only the
holder of the desk's runner lease works; a second runner waits and takes over within seconds
when the first one dies.

Exactly once inbound: a batch of inbound messages is committed together with its cursor (IMAP
UID, Telegram offset), and the Telegram offset is confirmed to the server only after that commit.

Outbound, under the fenced lease (runner/state.py): each channel's worker claims one row at a
time under its lease epoch, checks the lease right before the send's point of no return
(``OutboundMessage.fence``: the end of SMTP DATA, each Bot API request), and commits the
delivery as soon as the channel confirms it. A crash after the point of no return leaves the
row in the air: e-mail resends it with the same Message-ID; a channel without an idempotency
key marks it "in doubt" for an agent (or its ``in_doubt = "resend"`` policy).
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from supportdesk.channels.base import (
    Attachment,
    ChannelError,
    InboundMessage,
    OutboundMessage,
    SendAborted,
    SendError,
)
from supportdesk.core.config import ConfigError
from supportdesk.core.strict import read_trusted_config
from supportdesk.desk.desk import Desk
from supportdesk.inbound.importing import ImportSummary, parse_many, store_batch
from supportdesk.inbound.prep import keep_raw
from supportdesk.runner import state as runtime

log = logging.getLogger("supportdesk.runner.loop")

# channel types this (older) loop fetches itself; any other type is a push channel served by a
# PushWorker (runner/push.py) through the Channel interface
POLLED = ("email", "telegram")


def is_push(channel_type: str) -> bool:
    """The channel type serves (a listener calling the inbound sink) instead of being polled."""
    from supportdesk.channels.base import Channel
    from supportdesk.channels.registry import channel_class

    return channel_class(channel_type).serve is not Channel.serve


ChannelConfig = Any  # the typed per-channel models; the Channel objects replace this


@dataclass
class ChannelReport:
    channel: str
    fetched: int = 0
    new_tickets: int = 0
    quarantined: int = 0
    sent: int = 0
    failed: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class PassReport:
    channels: list[ChannelReport] = field(default_factory=list)
    outbox_sent: int = 0
    outbox_failed: int = 0
    outbox_retrying: int = 0

    @property
    def ok(self) -> bool:
        return all(c.error is None for c in self.channels)

    def as_dict(self) -> dict[str, Any]:
        return {
            "channels": [c.as_dict() for c in self.channels],
            "outbox": {
                "sent": self.outbox_sent,
                "failed": self.outbox_failed,
                "retrying": self.outbox_retrying,
            },
        }


def _imap_settings(ch: ChannelConfig) -> Any:
    from supportdesk.channels.email.imap import ImapSettings

    if ch.imap is None:
        raise ChannelError(f"channel {ch.name} has no [channel.imap] server configured")
    return ImapSettings(
        host=ch.imap.host,
        port=ch.imap.port,
        security=ch.imap.security,
        username=ch.imap.username or ch.address or "",
        password=ch.imap.password() or "",
        folders=list(ch.imap.folders),
        timeout=ch.imap.timeout,
        connect_timeout=ch.imap.connect_seconds(),
    )


def _smtp_settings(ch: ChannelConfig) -> Any:
    from supportdesk.channels.email.smtp import SmtpSettings

    if ch.smtp is None:
        raise ChannelError(f"channel {ch.name} has no [channel.smtp] server configured")
    return SmtpSettings(
        host=ch.smtp.host,
        port=ch.smtp.port,
        security=ch.smtp.security,
        username=ch.smtp.username,
        password=ch.smtp.password(),
        timeout=ch.smtp.timeout,
        connect_timeout=ch.smtp.connect_seconds(),
    )


def _telegram_settings(ch: ChannelConfig) -> Any:
    from supportdesk.channels.telegram.bot import TelegramSettings

    token = ch.token()
    if not token:
        raise ChannelError(f"channel {ch.name} has no bot token (set token_env or token_cmd)")
    return TelegramSettings(
        token=token, api_url=ch.api_url, file_url=ch.file_url, allow_groups=ch.groups
    )


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


class _Wakeups:
    """One event per channel's delivery worker; ``set()`` wakes them all."""

    def __init__(self) -> None:
        self._events: dict[str, threading.Event] = {}
        self._guard = threading.Lock()

    def for_channel(self, name: str) -> threading.Event:
        with self._guard:
            return self._events.setdefault(name, threading.Event())

    def set(self) -> None:
        with self._guard:
            events = list(self._events.values())
        for event in events:
            event.set()


def _cursor_writer(channel: str, key: str, value: Any) -> Callable[[Any], None]:
    def write(session: Any) -> None:
        runtime.set_cursor(session, channel, key, value)

    return write


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
        self.outbox_wakeup = _Wakeups()  # .set() wakes every channel's delivery worker
        self.epoch = 0  # the runner lease epoch held (a fencing token); 0 = standing by
        self.breakers: dict[str, Breaker] = {}
        self.on_event = on_event or (lambda kind, data: None)
        self._imap_sources: list[Any] = []
        self.push_workers: list[Any] = []
        self._lock = threading.Lock()

    # ---- configuration ------------------------------------------------------------------
    def channels(self) -> list[ChannelConfig]:
        chans = self.desk.config.channel
        if self.only:
            for name in self.only:
                self.desk.config.channel_named(name)  # raises ConfigError for an unknown name
            chans = [c for c in chans if c.name in self.only]
        return chans

    # ---- inbound: e-mail ----------------------------------------------------------------
    def poll_email(
        self, ch: ChannelConfig, *, source: Any = None, folders: list[str] | None = None
    ) -> ChannelReport:
        from supportdesk.channels.email.imap import FolderCursor, ImapSource

        rep = ChannelReport(ch.name)
        summary = ImportSummary()
        own = source is None
        src = source or ImapSource(_imap_settings(ch))
        try:
            if own:
                src.connect()
            for folder in folders or src.settings.folders:
                key = f"imap:{folder}"
                with self.desk.db.read() as s:
                    cur = runtime.get_cursor(s, ch.name, key)
                cursor = FolderCursor(folder, cur["uidvalidity"], cur["last_uid"]) if cur else None
                for batch, new_cursor in src.fetch_new(folder, cursor):
                    items = [
                        (f"imap:{ch.name}/{folder}/{new_cursor.uidvalidity}/{uid}", raw)
                        for uid, raw in batch
                    ]
                    # the raw bytes are in the ledger (synced) before anything parses them
                    shas = keep_raw(self.desk.home, [raw for _u, raw in batch])
                    parsed = parse_many([raw for _u, raw in batch], None)
                    value = {"uidvalidity": new_cursor.uidvalidity, "last_uid": new_cursor.last_uid}
                    results = store_batch(
                        self.desk,
                        items,
                        parsed,
                        shas=shas,
                        channel=ch.name,
                        historical=False,
                        summary=summary,
                        extra_in_tx=_cursor_writer(ch.name, key, value),
                    )
                    rep.fetched += len(batch)
                    if summary.acks:
                        self.outbox_wakeup.set()
                    for r in results:
                        if r.outcome in ("new_ticket", "joined"):
                            self.on_event(
                                "message", {"ticket_id": r.ticket_id, "outcome": r.outcome}
                            )
        finally:
            if own:
                src.close()
        rep.new_tickets = len(summary.new_tickets)
        rep.quarantined = summary.quarantined
        return rep

    # ---- inbound: Telegram --------------------------------------------------------------
    async def poll_telegram(self, ch: ChannelConfig, conn: Any, timeout: float) -> ChannelReport:
        rep = ChannelReport(ch.name)
        key = "telegram:offset"
        with self.desk.db.read() as s:
            offset = runtime.get_cursor(s, ch.name, key)
        messages, next_offset = await conn.fetch(offset, timeout)
        if not messages and next_offset == offset:
            return rep
        greetings: list[str] = []
        callbacks: list[tuple[str, str]] = []
        with self.desk.db.write() as s:
            for msg in messages:
                msg.channel = ch.name
                if self._store_telegram(s, ch, msg, rep, greetings, callbacks):
                    continue
            if next_offset is not None:
                runtime.set_cursor(s, ch.name, key, next_offset)
        for cq_id, text in callbacks:
            try:
                await conn.answer_callback(cq_id, text)
            except ChannelError as exc:
                log.info("answering a callback failed: %s", exc)
        if greetings or rep.fetched:
            self.outbox_wakeup.set()
        return rep

    def _store_telegram(
        self,
        s: Any,
        ch: ChannelConfig,
        msg: InboundMessage,
        rep: ChannelReport,
        greetings: list[str],
        callbacks: list[tuple[str, str]],
    ) -> bool:
        from supportdesk.inbound.ack import queue_ack
        from supportdesk.inbound.ingest import ingest
        from supportdesk.store.models import Ticket

        rep.fetched += 1
        if msg.extra.get("callback_data") is not None:
            handled = False
            try:
                from supportdesk.replies import csat

                with s.begin_nested():
                    handled = bool(csat.handle_inbound_callback(s, self.desk, msg))
            except ImportError:
                handled = False
            if msg.extra.get("callback_query_id"):
                answer = str(msg.extra.get("callback_answer") or "") if handled else ""
                callbacks.append((str(msg.extra["callback_query_id"]), answer))
            return True
        raw_sha: str | None = None
        if msg.raw:
            from supportdesk.store.files import store_raw

            # the update as received goes to the ledger (synced) before the database has it; a
            # full disk fails the batch, which is fetched again (the offset is not committed)
            raw_sha = store_raw(self.desk.home, msg.raw)
        try:
            with s.begin_nested():
                res = ingest(s, self.desk, msg, raw_sha256=raw_sha)
        except Exception as exc:  # one bad update must not block the chat: keep it in quarantine
            import json

            from supportdesk.inbound.ingest import quarantine
            from supportdesk.store.files import sha256_hex

            if raw_sha is None:
                blob = json.dumps(
                    {"external_id": msg.external_id, "text": msg.text, "extra": msg.extra},
                    ensure_ascii=False,
                    default=str,
                ).encode()
                raw_sha = sha256_hex(blob)
            quarantine(
                s,
                channel=ch.name,
                source=msg.external_id,
                raw_sha256=raw_sha,
                error=f"could not be stored: {type(exc).__name__}: {exc}",
            )
            rep.quarantined += 1
            return True
        if res.is_start:
            text = ch.greeting or (
                f"Здравствуйте! Это поддержка {self.desk.config.desk.name}. Напишите ваш вопрос — "
                f"мы ответим.\n\nHello! This is {self.desk.config.desk.name} support. "
                "Write your question and we will answer."
            )
            runtime.queue_plain(
                s,
                channel=ch.name,
                kind="telegram",
                to_address=str(msg.extra.get("chat_id") or msg.sender_address),
                text=text,
            )
            greetings.append(msg.sender_address)
            return True
        if res.outcome == "new_ticket":
            rep.new_tickets += 1
        if res.needs_ack and res.ticket_id:
            t = s.get(Ticket, res.ticket_id)
            if t is not None:
                queue_ack(s, self.desk, t, msg.sender_address)
        if res.outcome in ("new_ticket", "joined"):
            self.on_event("message", {"ticket_id": res.ticket_id, "outcome": res.outcome})
        return True

    # ---- outbound -----------------------------------------------------------------------
    def idempotent(self) -> dict[str, bool]:
        """Channels whose resend cannot deliver twice (e-mail keeps its Message-ID)."""
        from supportdesk.channels.registry import channel_class

        return {
            c.name: channel_class(c.type).capabilities.idempotent_send
            for c in self.desk.config.channel
        }

    def in_doubt_policy(self) -> dict[str, str]:
        return {c.name: c.in_doubt for c in self.desk.config.channel if c.in_doubt}

    def _resend_in_doubt(self, channel: str) -> bool:
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
        return n

    def send_outbox(self, *, limit: int = 50, channels: list[str] | None = None) -> PassReport:
        """Send up to ``limit`` due rows, one claim at a time (each committed as soon as the
        channel confirms it). Stops at once when this runner's lease epoch is no longer live."""
        rep = PassReport()
        # push channels (the website) deliver through their own worker (runner/push.py)
        chans = {c.name: c for c in self.channels() if c.type in POLLED}
        names = [n for n in (channels or list(chans)) if n in chans]
        smtp: dict[str, Any] = {}
        tg: list[tuple[ChannelConfig, runtime.Claimed]] = []
        try:
            for _ in range(limit):
                if not self.epoch or self.stop_event.is_set():
                    break
                open_ = [n for n in names if self.breaker(n).allows()]
                if not open_:
                    break
                try:
                    claimed = runtime.claim_due(self.desk, epoch=self.epoch, channels=open_)
                except runtime.LeaseLost:
                    log.warning("runner lease lost; not sending")
                    break
                if not claimed:
                    break
                item = claimed[0]
                ch = chans[item.channel]
                if ch.type == "telegram":
                    tg.append((ch, item))
                    asyncio.run(self._send_telegram_all(tg, rep))
                    tg.clear()
                else:
                    self._send_email(ch, item, smtp, rep)
        finally:
            for sender in smtp.values():
                try:
                    sender.close()
                except Exception:
                    pass
        return rep

    def breaker(self, channel: str) -> Breaker:
        return self.breakers.setdefault(channel, Breaker())

    def _fence(self, item: runtime.Claimed) -> Callable[[], None]:
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

    def _sent(self, item: runtime.Claimed, external_ids: list[str], rep: PassReport) -> None:
        self.breaker(item.channel).succeeded()
        try:
            runtime.mark_sent(self.desk, item.outbox_id, external_ids, epoch=item.epoch)
        except runtime.LeaseLost:
            log.warning("outbox %s was sent but this runner lost the lease first", item.outbox_id)
            return
        rep.outbox_sent += 1
        self.on_event("delivered", {"outbox_id": item.outbox_id, "ticket_id": item.ticket_id})

    def _outbound(self, item: runtime.Claimed, kind: Any) -> OutboundMessage:
        atts = []
        for filename, rel, ctype in item.attachments:
            try:
                data = (self.desk.home / rel).read_bytes()
            except OSError:
                continue
            atts.append(
                Attachment(filename=filename, content_type=ctype, data=data, size=len(data))
            )
        extra: dict[str, Any] = {}
        if item.payload.get("buttons"):
            extra["buttons"] = item.payload["buttons"]
        if item.sent_parts:
            extra["skip_parts"] = item.sent_parts
        extra["outbox_id"] = item.outbox_id  # VK derives its random_id (idempotency) from it
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
            fence=self._fence(item),
        )

    def _send_email(
        self, ch: ChannelConfig, item: runtime.Claimed, smtp: dict[str, Any], rep: PassReport
    ) -> None:
        from supportdesk.channels.email.smtp import SmtpSender

        try:
            if ch.name not in smtp:
                smtp[ch.name] = SmtpSender(
                    _smtp_settings(ch)
                ).__enter__()  # one connection per pass
            out = self._outbound(item, "email")
            from_addr = ch.address or (ch.smtp.username if ch.smtp else "") or ""
            result = smtp[ch.name].send(
                out, from_addr, ch.display_name or self.desk.config.desk.name
            )
        except SendError as exc:
            self._failed(item, exc, None, rep)
            return
        except (ChannelError, ConfigError) as exc:
            self._failed(item, SendError(str(exc)), None, rep)
            return
        self._sent(item, result.external_ids or [item.message_id], rep)

    async def _send_telegram_all(
        self, items: list[tuple[ChannelConfig, runtime.Claimed]], rep: PassReport
    ) -> None:
        from supportdesk.channels.telegram.bot import TelegramConnector

        conns: dict[str, Any] = {}
        try:
            for ch, item in items:
                try:
                    if ch.name not in conns:
                        conns[ch.name] = TelegramConnector(_telegram_settings(ch))
                        await conns[ch.name].start()
                    result = await conns[ch.name].send(self._outbound(item, "telegram"))
                except SendError as exc:
                    self._failed(item, exc, getattr(exc, "sent_parts", 0) or None, rep)
                    continue
                except (ChannelError, ConfigError) as exc:
                    self._failed(item, SendError(str(exc)), None, rep)
                    continue
                self._sent(item, result.external_ids, rep)
        finally:
            for c in conns.values():
                try:
                    await c.close()
                except Exception:
                    pass

    def _failed(
        self,
        item: runtime.Claimed,
        exc: SendError,
        sent_parts: int | None,
        rep: PassReport,
    ) -> None:
        if isinstance(exc, SendAborted):
            log.warning("outbox %s not sent: %s", item.outbox_id, exc)
            return
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
                resend_in_doubt=self._resend_in_doubt(item.channel),
            )
        except runtime.LeaseLost:
            log.warning("outbox %s: %s (this runner lost the lease meanwhile)", item.outbox_id, exc)
            return
        if state == "failed":
            rep.outbox_failed += 1
        else:
            rep.outbox_retrying += 1
        log.warning("outbox %s: %s", item.outbox_id, exc)

    # ---- timers -------------------------------------------------------------------------
    def tick(self) -> None:
        """SLA breaches, snoozed tickets waking up, stale presence."""
        from supportdesk.store.models import utcnow

        now = utcnow()
        with self.desk.db.write() as s:
            try:
                from supportdesk.sla import clocks as sla

                if hasattr(sla, "tick"):
                    sla.tick(s, self.desk, now)
            except ImportError:
                pass
            try:
                from supportdesk.tickets import triage

                if hasattr(triage, "wake_snoozed"):
                    triage.wake_snoozed(s, self.desk, now)
            except ImportError:
                pass

    # ---- one pass -----------------------------------------------------------------------
    def run_once(self, *, telegram_timeout: float = 0) -> PassReport:
        """One pass under the runner lease (refused while another runner is active)."""
        from supportdesk.desk.desk import Conflict

        self.epoch = runtime.acquire_lease(self.desk, holder=self.holder)
        if not self.epoch:
            with self.desk.db.read() as s:
                from supportdesk.store.models import Lease

                lease = s.get(Lease, "runner")
                who = f"{lease.holder}" if lease else "another process"
            raise Conflict(
                f"a runner is already active ({who}); it fetches and sends for this desk"
            )
        try:
            self.reclaim()
            return self._pass(telegram_timeout)
        finally:
            runtime.release_lease(self.desk, holder=self.holder)
            self.epoch = 0

    def _pass(self, telegram_timeout: float) -> PassReport:
        rep = PassReport()
        for ch in self.channels():
            if ch.type not in POLLED:
                continue  # a push channel (the website) is served only under `run`
            try:
                if ch.type == "email":
                    if ch.imap is None:
                        continue  # a send-only channel
                    crep = self.poll_email(ch)
                else:
                    crep = asyncio.run(self._telegram_once(ch, telegram_timeout))
                runtime.record_success(self.desk, ch.name)
            except (ChannelError, ConfigError) as exc:
                crep = ChannelReport(ch.name, error=str(exc))
                runtime.record_error(self.desk, ch.name, str(exc))
            rep.channels.append(crep)
        out = self.send_outbox()
        rep.outbox_sent, rep.outbox_failed, rep.outbox_retrying = (
            out.outbox_sent,
            out.outbox_failed,
            out.outbox_retrying,
        )
        self.tick()
        return rep

    async def _telegram_once(self, ch: ChannelConfig, timeout: float) -> ChannelReport:
        from supportdesk.channels.telegram.bot import TelegramConnector

        conn = TelegramConnector(_telegram_settings(ch))
        await conn.start()
        try:
            total = ChannelReport(ch.name)
            while True:
                rep = await self.poll_telegram(ch, conn, timeout)
                total.fetched += rep.fetched
                total.new_tickets += rep.new_tickets
                total.quarantined += rep.quarantined
                if rep.fetched == 0:
                    break
            # confirm what we committed, so the server does not send it again
            with self.desk.db.read() as s:
                offset = runtime.get_cursor(s, ch.name, "telegram:offset")
            if offset is not None:
                await conn.fetch(offset, 0)
                # the confirming call may itself return new updates: they stay pending on the
                # server (not confirmed) and come again on the next pass — nothing is lost
            return total
        finally:
            await conn.close()

    # ---- continuous ---------------------------------------------------------------------
    def run_forever(self, *, lease_poll: float = runtime.HEARTBEAT) -> None:
        threads = [
            threading.Thread(target=self._lease_loop, args=(lease_poll,), name="lease", daemon=True)
        ]
        for ch in self.channels():
            if ch.type == "email" and ch.imap is not None:
                for folder in ch.imap.folders:
                    threads.append(
                        threading.Thread(
                            target=self._imap_loop,
                            args=(ch, folder),
                            name=f"imap:{ch.name}:{folder}",
                            daemon=True,
                        )
                    )
            elif ch.type == "telegram":
                threads.append(
                    threading.Thread(
                        target=self._telegram_loop,
                        args=(ch,),
                        name=f"telegram:{ch.name}",
                        daemon=True,
                    )
                )
            elif ch.type not in POLLED and is_push(ch.type):
                from supportdesk.runner.push import PushWorker

                worker = PushWorker(
                    self.desk,
                    ch,
                    active=self.active,
                    stop=self.stop_event,
                    on_event=self.on_event,
                    wake_outbox=self.outbox_wakeup.set,
                    epoch=lambda: self.epoch,
                )
                self.push_workers.append(worker)
                threads.append(
                    threading.Thread(target=worker.run, name=f"push:{ch.name}", daemon=True)
                )
        # one delivery worker per channel: a hung peer stalls only its own
        for ch in self.channels():
            if ch.type not in POLLED:
                continue  # a push channel's worker delivers (above)
            threads.append(
                threading.Thread(
                    target=self._outbox_loop, args=(ch.name,), name=f"outbox:{ch.name}", daemon=True
                )
            )
        threads.append(threading.Thread(target=self._timer_loop, name="timers", daemon=True))
        for t in threads:
            t.start()
        try:
            while not self.stop_event.wait(0.5):
                pass
        finally:
            self.stop()
            for t in threads:
                t.join(timeout=5)
            if self.active.is_set():
                runtime.release_lease(self.desk, holder=self.holder)

    def stop(self) -> None:
        self.stop_event.set()
        self.outbox_wakeup.set()
        with self._lock:
            for src in self._imap_sources:
                try:
                    src.interrupt()
                except Exception:
                    pass

    def _lease_loop(self, every: float) -> None:
        while not self.stop_event.is_set():
            try:
                epoch = runtime.acquire_lease(self.desk, holder=self.holder)
            except Exception as exc:
                log.warning("lease: %s", exc)
                epoch = 0
            if epoch and epoch != self.epoch:
                if self.active.is_set():
                    log.warning("runner lease lost and taken again (epoch %d)", epoch)
                log.info("runner active (%s, epoch %d)", self.holder, epoch)
                self.epoch = epoch
                try:
                    self.reclaim()
                except Exception:
                    log.exception("reclaiming the outbox")
                self.active.set()
                self.outbox_wakeup.set()
            elif not epoch and self.active.is_set():
                log.warning("runner lease lost; standing by")
                self.epoch = 0
                self.active.clear()
            self.stop_event.wait(every)

    def _wait_active(self) -> bool:
        while not self.stop_event.is_set():
            if self.active.wait(0.5):
                return True
        return False

    def _imap_loop(self, ch: ChannelConfig, folder: str) -> None:
        from supportdesk.channels.email.imap import FolderCursor, ImapSource

        backoff = 1.0
        while self._wait_active():
            src = None
            try:
                src = ImapSource(_imap_settings(ch))
                with self._lock:
                    self._imap_sources.append(src)
                src.connect()
                backoff = 1.0
                while self.active.is_set() and not self.stop_event.is_set():
                    self.poll_email(ch, source=src, folders=[folder])
                    runtime.record_success(self.desk, ch.name)
                    with self.desk.db.read() as s:
                        cur = runtime.get_cursor(s, ch.name, f"imap:{folder}")
                    since = (
                        FolderCursor(folder, cur["uidvalidity"], cur["last_uid"]) if cur else None
                    )
                    src.idle_wait(folder, timeout=max(ch.poll_interval, 1.0), since=since)
            except (ChannelError, ConfigError) as exc:
                wait = runtime.record_error(self.desk, ch.name, str(exc))
                self.stop_event.wait(min(max(backoff, 1.0), wait.total_seconds()))
                backoff = min(backoff * 2, runtime.RECONNECT_CAP)
            except Exception as exc:  # keep the loop alive; the error is visible in status
                log.exception("imap loop")
                runtime.record_error(self.desk, ch.name, f"{type(exc).__name__}: {exc}")
                self.stop_event.wait(backoff * random.uniform(0.75, 1.0))
                backoff = min(backoff * 2, runtime.RECONNECT_CAP)
            finally:
                if src is not None:
                    with self._lock:
                        if src in self._imap_sources:
                            self._imap_sources.remove(src)
                    try:
                        src.close()
                    except Exception:
                        pass

    def _telegram_loop(self, ch: ChannelConfig) -> None:
        asyncio.run(self._telegram_async(ch))

    async def _telegram_async(self, ch: ChannelConfig) -> None:
        from supportdesk.channels.telegram.bot import TelegramConnector

        backoff = 1.0
        while not self.stop_event.is_set():
            if not self.active.is_set():
                await asyncio.sleep(0.3)
                continue
            conn = None
            try:
                conn = TelegramConnector(_telegram_settings(ch))
                await conn.start()
                backoff = 1.0
                while self.active.is_set() and not self.stop_event.is_set():
                    await self.poll_telegram(ch, conn, timeout=10)
                    runtime.record_success(self.desk, ch.name)
            except (ChannelError, ConfigError) as exc:
                runtime.record_error(self.desk, ch.name, str(exc))
                await asyncio.sleep(backoff * random.uniform(0.75, 1.0))
                backoff = min(backoff * 2, runtime.RECONNECT_CAP)
            except Exception as exc:
                log.exception("telegram loop")
                runtime.record_error(self.desk, ch.name, f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(backoff * random.uniform(0.75, 1.0))
                backoff = min(backoff * 2, runtime.RECONNECT_CAP)
            finally:
                if conn is not None:
                    try:
                        await conn.close()
                    except Exception:
                        pass

    def _outbox_loop(self, channel: str) -> None:
        wakeup = self.outbox_wakeup.for_channel(channel)
        breaker = self.breaker(channel)
        while self._wait_active():
            try:
                self.send_outbox(channels=[channel])
            except Exception:
                log.exception("outbox loop")
            wakeup.wait(max(min(breaker.remaining(), 5.0), 1.0) if not breaker.allows() else 1.0)
            wakeup.clear()

    def _timer_loop(self) -> None:
        while self._wait_active():
            try:
                self.tick()
            except Exception:
                log.exception("timers")
            self.stop_event.wait(5.0)


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


__all__ = ["ChannelReport", "PassReport", "Runner", "run_desk", "timedelta", "time"]
