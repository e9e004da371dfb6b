"""The e-mail channel: IMAP folders in (one cursor per folder), SMTP out.

imapclient and smtplib block, so every call runs in a worker thread (``asyncio.to_thread``)
behind the async :class:`~supportdesk.channels.base.Channel` interface. The IMAP connection
and the SMTP connection are separate, so a slow fetch never delays a reply.
"""

from __future__ import annotations

import asyncio
import builtins
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from supportdesk.channels.base import (
    Capabilities,
    Channel,
    ChannelError,
    Fetched,
    InboundMessage,
    OutboundMessage,
    ParseError,
    SendResult,
)
from supportdesk.core.config import ChannelConfigBase, ServerConfig

if TYPE_CHECKING:
    from supportdesk.channels.email.imap import FolderCursor, ImapSettings, ImapSource
    from supportdesk.channels.email.smtp import SmtpSender, SmtpSettings


class EmailConfig(ChannelConfigBase):
    type: Literal["email"]
    address: str | None = None  # the desk's address on this channel
    imap: ServerConfig | None = None
    smtp: ServerConfig | None = None
    aliases: list[str] = Field(default_factory=list)  # other addresses of ours (never tickets)
    poll_interval: float = 60.0  # seconds between UID polls under `run` (IDLE does the rest)

    def own_addresses(self) -> list[str]:
        out = [self.address] if self.address else []
        if self.imap and self.imap.username and "@" in self.imap.username:
            out.append(self.imap.username)
        return out + list(self.aliases)

    def from_address(self) -> str:
        return self.address or (self.imap.username if self.imap and self.imap.username else "")


def imap_settings(cfg: EmailConfig) -> ImapSettings:
    from supportdesk.channels.email.imap import ImapSettings

    if cfg.imap is None:
        raise ChannelError(f"channel {cfg.name} has no [channel.imap] server configured")
    return ImapSettings(
        host=cfg.imap.host,
        port=cfg.imap.port,
        security=cfg.imap.security,
        username=cfg.imap.username or cfg.address or "",
        password=cfg.imap.password() or "",
        folders=list(cfg.imap.folders),
        timeout=cfg.imap.timeout,
        connect_timeout=cfg.imap.connect_seconds(),
    )


def smtp_settings(cfg: EmailConfig) -> SmtpSettings:
    from supportdesk.channels.email.smtp import SmtpSettings

    if cfg.smtp is None:
        raise ChannelError(f"channel {cfg.name} has no [channel.smtp] server configured")
    return SmtpSettings(
        host=cfg.smtp.host,
        port=cfg.smtp.port,
        security=cfg.smtp.security,
        username=cfg.smtp.username,
        password=cfg.smtp.password(),
        timeout=cfg.smtp.timeout,
        connect_timeout=cfg.smtp.connect_seconds(),
    )


def parse_raw_email(raw: bytes, source: str) -> InboundMessage:
    """Parse one raw mail; a failure becomes a message the pipeline quarantines, never an
    exception (one bad mail must not stop a folder)."""
    from supportdesk.channels.email.parse import parse_email

    try:
        msg = parse_email(raw)
    except ParseError as exc:
        return failed_parse(raw, source, str(exc) or "the message cannot be parsed")
    except Exception as exc:  # the parser's contract is ParseError; never let one mail stop a batch
        return failed_parse(raw, source, f"parser failure: {type(exc).__name__}: {exc}")
    msg.source = source
    msg.raw = raw
    return msg


def failed_parse(raw: bytes | None, source: str, error: str) -> InboundMessage:
    return InboundMessage(
        kind="email",
        external_id=source,
        sender_address="",
        raw=raw,
        source=source,
        parse_error=error,
    )


class EmailChannel(Channel):
    type: ClassVar[str] = "email"
    title: ClassVar[str] = "E-mail"
    icon: ClassVar[str] = "@"
    identity_kind: ClassVar[str] = "email"
    config_model: ClassVar[builtins.type[ChannelConfigBase]] = EmailConfig
    capabilities: ClassVar[Capabilities] = Capabilities(
        attachments=True,
        max_attachment_bytes=25 * 1024 * 1024,
        html=True,
        idempotent_send=True,
        subjects=True,
        cc=True,
        fenced_send=True,
    )

    config: EmailConfig

    @classmethod
    def reply_id(cls, sender: str) -> str:
        """A Message-ID in the sender's domain: the same one on every resend after a crash."""
        from supportdesk.channels.email.smtp import make_message_id

        return make_message_id(sender)

    def __init__(self, config: ChannelConfigBase, *, home: Any, desk_name: str) -> None:
        super().__init__(config, home=home, desk_name=desk_name)
        # one IMAP connection per folder loop; its lock is held while a thread uses it
        self._sources: dict[str, tuple[ImapSource, threading.Lock]] = {}
        self._batches: dict[str, tuple[Iterator[Any], Any]] = {}
        self._smtp: SmtpSender | None = None
        self._smtp_lock = threading.Lock()
        self._lock = threading.Lock()

    # -- inbound ------------------------------------------------------------------------------
    def cursor_keys(self) -> list[str]:
        if self.config.imap is None:
            return []  # a send-only channel
        return [f"imap:{folder}" for folder in self.config.imap.folders]

    def _source(self, key: str) -> tuple[ImapSource, threading.Lock]:
        from supportdesk.channels.email.imap import ImapSource

        with self._lock:
            got = self._sources.get(key)
            if got is None:
                got = self._sources[key] = (
                    ImapSource(imap_settings(self.config)),
                    threading.Lock(),
                )
        return got

    def _cursor(self, key: str, cursor: Any | None) -> FolderCursor | None:
        from supportdesk.channels.email.imap import FolderCursor

        if not cursor:
            return None
        return FolderCursor(key.removeprefix("imap:"), cursor["uidvalidity"], cursor["last_uid"])

    def _next_batch(self, key: str, cursor: Any | None) -> Fetched:
        folder = key.removeprefix("imap:")
        src, busy = self._source(key)
        with busy:
            try:
                if not src.connected:
                    src.connect()
                running = self._batches.get(key)
                if running is None or running[1] != cursor:
                    running = (iter(src.fetch_new(folder, self._cursor(key, cursor))), cursor)
                batch, new = next(running[0])
            except StopIteration:
                self._batches.pop(key, None)
                return Fetched([], cursor, more=False)
            except BaseException:
                self._batches.pop(key, None)
                self._drop(key, src)
                raise
        value = {"uidvalidity": new.uidvalidity, "last_uid": new.last_uid}
        self._batches[key] = (running[0], value)
        prefix = f"imap:{self.name}/{folder}/{new.uidvalidity}"
        msgs = [parse_raw_email(raw, f"{prefix}/{uid}") for uid, raw in batch]
        return Fetched(msgs, value, more=True)

    async def fetch(self, key: str, cursor: Any | None, *, timeout: float) -> Fetched:
        return await asyncio.to_thread(self._next_batch, key, cursor)

    def _idle(self, key: str, cursor: Any | None) -> None:
        src, busy = self._source(key)
        with busy:
            try:
                if not src.connected:
                    src.connect()
                wait = max(self.config.poll_interval, 1.0)
                src.idle_wait(key.removeprefix("imap:"), wait, self._cursor(key, cursor))
            except BaseException:
                self._drop(key, src)
                raise

    async def wait(self, key: str, cursor: Any | None, timeout: float) -> None:
        """IMAP IDLE (or NOOP polling) until new mail, ``poll_interval`` at most."""
        await asyncio.to_thread(self._idle, key, cursor)

    def _drop(self, key: str, src: ImapSource) -> None:
        with self._lock:
            if self._sources.get(key, (None,))[0] is src:
                del self._sources[key]
        src.close()

    def _close_sources(self) -> None:
        with self._lock:
            sources, self._sources = list(self._sources.values()), {}
        for src, _busy in sources:
            src.interrupt()  # a running IDLE returns soon
        for src, busy in sources:
            with busy:
                src.close()

    def parse_raw(self, raw: bytes) -> InboundMessage | None:
        from supportdesk.channels.email.parse import parse_email

        return parse_email(raw)

    # -- outbound -----------------------------------------------------------------------------
    def _send(self, msg: OutboundMessage) -> SendResult:
        from supportdesk.channels.email.smtp import SmtpSender

        with self._smtp_lock:
            if self._smtp is None:
                self._smtp = SmtpSender(smtp_settings(self.config)).__enter__()
            cfg = self.config
            from_addr = cfg.address or (cfg.smtp.username if cfg.smtp else "") or ""
            return self._smtp.send(msg, from_addr, cfg.display_name or self.desk_name)

    async def send(self, msg: OutboundMessage) -> SendResult:
        return await asyncio.to_thread(self._send, msg)

    def _close(self) -> None:
        self._close_sources()
        self._batches.clear()
        with self._smtp_lock:
            smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    async def close(self) -> None:
        await asyncio.to_thread(self._close)
