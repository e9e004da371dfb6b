"""Plain data shared by every connector, the runner and the ingest service."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Kind = Literal["email", "telegram", "phone"]


class ChannelError(Exception):
    """A channel could not do its work (server down, login refused...). One sentence."""


class ParseError(Exception):
    """Raw bytes could not be understood; the message goes to quarantine with this reason."""


class SendError(ChannelError):
    """Sending failed. ``permanent`` means retrying cannot help (5xx, chat not found...)."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


@dataclass
class Attachment:
    """One file that came with (or goes with) a message.

    ``filename`` is the original name as the sender gave it (data, never a path); the store
    chooses the safe on-disk name. ``data`` is None when the file could not be fetched (a
    Telegram file over the Bot API download limit): then ``note`` says why.
    """

    filename: str
    content_type: str = "application/octet-stream"
    data: bytes | None = None
    size: int = 0
    note: str | None = None
    content_id: str | None = None
    inline: bool = False


@dataclass
class InboundMessage:
    """A normalized inbound message from any channel.

    ``external_id`` identifies the message on its channel: the RFC 5322 Message-ID without angle
    brackets for e-mail (or ``sha256:<hex>`` of the raw bytes when it has none), ``tg:<chat>:<id>``
    for Telegram. ``dedupe_key`` defaults to it.
    """

    kind: Kind
    external_id: str
    sender_address: str
    sender_name: str = ""
    subject: str = ""
    text: str = ""
    quoted_text: str = ""  # quoted history and signature, kept and shown folded
    html: str | None = None
    sent_at: datetime | None = None
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    to_addresses: list[str] = field(default_factory=list)
    cc_addresses: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    # Why this message must never get an automatic reply ("" if a person wrote it):
    # e.g. "Auto-Submitted: auto-replied", "Precedence: bulk", "bounce".
    auto_reason: str = ""
    # For a bounce (multipart/report, MAILER-DAEMON): Message-IDs of our mails it reports.
    bounce_of: list[str] = field(default_factory=list)
    bounce_error: str = ""
    raw: bytes | None = None  # the exact bytes as received (e-mail); the ledger keeps them
    # Telegram: chat id, message id, chat type, username; edits; callback data (CSAT buttons)
    extra: dict[str, Any] = field(default_factory=dict)
    edited: bool = False
    channel: str = ""  # the configured channel name; the runner fills it in

    @property
    def dedupe_key(self) -> str:
        return self.external_id


@dataclass
class OutboundMessage:
    """A reply (or proactive message) to deliver. Built by the runner from an outbox row."""

    kind: Kind
    to_address: str  # e-mail address or Telegram chat id
    text: str
    subject: str = ""
    to_name: str = ""
    message_id: str = ""  # e-mail: generated Message-ID without brackets, set before sending
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    html: str | None = None
    auto: bool = False  # an acknowledgement or survey: sent with Auto-Submitted: auto-replied
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. Telegram inline keyboard


@dataclass
class SendResult:
    """What a connector reports after delivering: its ids for the sent parts."""

    external_ids: list[str] = field(default_factory=list)
    detail: str = ""
