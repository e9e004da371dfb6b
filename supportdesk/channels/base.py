"""The Channel interface and the plain data every channel, the runner and the pipeline share.

A channel (built-in or third-party) is a subclass of :class:`Channel` registered under the
``supportdesk.channels`` entry-point group (see :mod:`supportdesk.channels.registry`). It speaks
plain data only: it returns :class:`InboundMessage` objects with a cursor, and sends
:class:`OutboundMessage` objects. It never touches the store; the runner commits what it returns
together with its cursor (one inbound pipeline for every channel), then calls :meth:`confirm`.
"""

from __future__ import annotations

import asyncio
import builtins
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from supportdesk.core.config import ChannelConfigBase

# The customers' address kind of a channel ("email", "telegram", "phone", "vk", "web"...).
Kind = str


class ChannelError(Exception):
    """A channel could not do its work (server down, login refused...). One sentence."""


class ParseError(Exception):
    """Raw bytes could not be understood; the message goes to quarantine with this reason."""


class SendError(ChannelError):
    """Sending failed. ``permanent`` means retrying cannot help (5xx, chat not found...).

    ``maybe_delivered``: the failure came after the point of no return without an answer (a
    read timeout or a dropped connection after the request or the end of DATA went out), so the
    peer may have the message: the outbox does not simply retry it (see the in-doubt state).
    ``connection``: see below."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
        maybe_delivered: bool = False,
        connection: bool = False,
        sent_parts: int = 0,
    ):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after
        self.maybe_delivered = maybe_delivered
        # the channel itself failed (cannot connect, no answer in time, login refused), not this
        # message: the runner pauses the channel's deliveries (a circuit breaker) rather than
        # running the next row into the same wall
        self.connection = connection
        # parts of a split message delivered before the failure; the retry skips them
        self.sent_parts = sent_parts


class SendAborted(SendError):
    """The runner withdrew a send before its point of no return (it lost its lease): nothing
    went out. Raised by ``OutboundMessage.fence``; channels let it through."""


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
    # Messenger threading: a message with a conversation key (a Telegram chat, a VK peer, a
    # website visitor) joins the customer's open ticket on this channel, and a new ticket is
    # titled by its first line; replies go to extra["chat_id"] when set. "" = e-mail-like:
    # threading by In-Reply-To/References and the [#N] token, titles from the subject.
    conversation: str = ""
    # Where the bytes came from (an IMAP UID, a file path); defaults to external_id.
    source: str = ""
    # Set when the raw bytes could not be parsed: the pipeline keeps them in quarantine.
    parse_error: str = ""
    # (undated, dated) content signatures, when worked out ahead of ingest (the import's parser
    # processes, see inbound/signatures.py); None: ingest works them out
    signatures: tuple[str, str] | None = field(default=None, repr=False, compare=False)

    @property
    def dedupe_key(self) -> str:
        return self.external_id

    @property
    def conversation_key(self) -> str:
        """The conversation key: the field, else ``extra["conversation"]`` (CHANNEL_SPEC)."""
        return self.conversation or str(self.extra.get("conversation") or "")


@dataclass
class OutboundMessage:
    """A reply (or proactive message) to deliver. Built by the runner from an outbox row."""

    kind: Kind
    to_address: str  # e-mail address or Telegram chat id
    text: str
    subject: str = ""
    to_name: str = ""
    cc: list[str] = field(default_factory=list)  # e-mail: more visible recipients
    bcc: list[str] = field(default_factory=list)  # e-mail: envelope only, never in a header
    message_id: str = ""  # e-mail: generated Message-ID without brackets, set before sending
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    html: str | None = None
    auto: bool = False  # an acknowledgement or survey: sent with Auto-Submitted: auto-replied
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. Telegram inline keyboard
    # Called by the channel right before each point of no return (the end of SMTP DATA, each
    # Bot API request): raises SendAborted when this runner must not send any more. A channel
    # that cannot tell its point of no return leaves it to the runner (called before send()).
    fence: Callable[[], None] | None = field(default=None, repr=False, compare=False)


@dataclass
class SendResult:
    """What a connector reports after delivering: its ids for the sent parts."""

    external_ids: list[str] = field(default_factory=list)
    detail: str = ""


# ---------------------------------------------------------------------------------------------
# The interface


@dataclass(frozen=True)
class Capabilities:
    """What a channel can carry; the composer, the pipeline and the outbox read these."""

    attachments: bool = False
    max_attachment_bytes: int = 0  # 0 = none allowed / unknown
    max_text: int = 0  # 0 = no limit; the channel splits longer text itself
    edits: bool = False  # inbound edits arrive with InboundMessage.edited = True
    buttons: bool = False  # inline buttons (CSAT)
    html: bool = False  # can send an HTML alternative
    idempotent_send: bool = False  # a resend after a crash cannot deliver twice (Message-ID)
    # send() calls msg.fence right before each point of no return (the end of SMTP DATA, each
    # Bot API request). False: the runner calls it before send(), so a crash anywhere in send()
    # leaves the reply in flight (resent if idempotent_send, else "in doubt")
    fenced_send: bool = False
    subjects: bool = False  # messages have subjects; threading by References/[#N]
    cc: bool = False  # more visible (Cc) and blind (Bcc) recipients: e-mail addresses
    # a live chat (the website): the channel itself shows presence and the promised reply
    # time (no acknowledgement), and names the agent who answered
    live_chat: bool = False
    # a customer-service window: free-form replies only this long after the customer's last
    # message, approved templates after it (WhatsApp: 24 hours); None = no such rule
    reply_window: timedelta | None = None


@dataclass
class Fetched:
    """One fetch from a polling channel: the messages and the cursor after them."""

    messages: list[InboundMessage]
    cursor: Any  # JSON-serialisable; committed in the same transaction as the messages
    more: bool = False  # True: call fetch again at once (a backlog)


# what the pipeline did: the four of the spec, and "updated" (an edit), "outbound" (our own
# message, imported), "bounce" (a delivery failure noted on its ticket), "ignored" (a
# conversation opener or a button press: no ticket message)
Outcome = Literal[
    "new_ticket", "joined", "duplicate", "quarantined", "updated", "outbound", "bounce", "ignored"
]


@dataclass(frozen=True)
class Stored:
    """What the inbound pipeline did with one message (returned after the commit)."""

    external_id: str
    ticket_id: int | None
    message_id: int | None
    outcome: Outcome


@dataclass(frozen=True)
class ChatLine:
    """One line of a conversation as a push channel shows it back to the customer (a website
    visitor's reconnect). ``id`` is the message's external id: the channel's own id for the
    customer's lines (``web:<visitor>:<client id>``), ``web-out:...`` for replies, so a client
    shows each line once whether it came pushed, acknowledged or from history."""

    id: str
    direction: Literal["in", "out"] | str
    text: str
    at: datetime
    author: str = ""


@dataclass(frozen=True)
class Article:
    """A public knowledge-base article offered to a customer (``slug`` names its page)."""

    title: str
    slug: str
    snippet: str = ""


@dataclass(frozen=True)
class Availability:
    online: bool  # an agent is at work now (and it is within the channel's business hours)
    first_response: timedelta  # the promised reply time (the SLA first response of the channel)


class InboundSink(Protocol):
    """Given to push channels (web listener, webhooks).

    Each call runs the one inbound pipeline (raw ledger, parse/normalise, ingest, quarantine,
    acknowledgement, CSAT, audit) and returns only after the transaction committed, so a
    channel may tell its peer "received" after the await.

    ``conversation``, ``suggest``, ``availability`` and ``forward_by_email`` are the few
    questions a live chat (the website) asks the desk (read-only, except ``forward_by_email``);
    a channel that needs none of them calls only ``__call__`` (and ``delivery``).
    """

    async def __call__(self, messages: list[InboundMessage]) -> list[Stored]: ...

    async def delivery(self, reports: list[DeliveryReport]) -> None:
        """Record what the peer reports about our messages (delivered, read, failed) on their
        outbox rows; returns after the commit."""
        ...

    async def conversation(self, channel: str, address: str, limit: int = 100) -> list[ChatLine]:
        """The newest conversation of ``address`` (the channel's identity kind) on ``channel``,
        oldest line first; internal notes never appear."""
        ...

    async def suggest(self, text: str, limit: int = 3) -> list[Article]:
        """Public knowledge-base articles matching ``text`` (Russian and English stems)."""
        ...

    async def availability(self, channel: str) -> Availability:
        """Whether anyone is online for ``channel`` now, and the promised reply time."""
        ...

    async def forward_by_email(
        self, channel: str, address: str, msg: OutboundMessage
    ) -> str | None:
        """The customer has gone: deliver ``msg`` by e-mail to the address they left, on the
        same ticket; returns that address, or None when there is none."""
        ...


@dataclass
class DeliveryReport:
    """A peer's report about one message we sent (WhatsApp's ``statuses``)."""

    external_id: str  # the id send() returned for it
    status: str  # sent | delivered | read | failed
    at: datetime | None = None
    recipient: str = ""
    # what we sent along to identify it (WhatsApp's biz_opaque_callback_data): "outbox:<id>:<part>"
    correlation: str = ""
    error: str = ""


class Channel(ABC):
    """One configured channel. Subclasses set the class variables and implement ``send`` plus
    either the polling trio (``cursor_keys``/``fetch``/``confirm``) or ``serve``."""

    type: ClassVar[str]  # the config `type`
    title: ClassVar[str]  # "E-mail", "Telegram", "VK", "WhatsApp", "Website"
    icon: ClassVar[str]  # one cell wide, for the console
    identity_kind: ClassVar[str]  # customers' address kind: "email", "telegram", "vk", "web"...
    config_model: ClassVar[builtins.type[ChannelConfigBase]]
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, config: ChannelConfigBase, *, home: Path, desk_name: str) -> None:
        self.config = config
        self.home = home
        self.desk_name = desk_name

    @property
    def name(self) -> str:
        return self.config.name

    async def open(self) -> None:
        """Connect and resolve secrets (token_env/token_cmd). Raise ChannelError on failure."""
        return None

    async def close(self) -> None:
        return None

    # polling channels (IMAP, Telegram, VK): one loop per key; [] = not polled
    def cursor_keys(self) -> list[str]:
        """One fetch loop per key (an IMAP folder; "" for one stream). [] = not polled."""
        return []

    async def fetch(self, key: str, cursor: Any | None, *, timeout: float) -> Fetched:
        """Messages after ``cursor`` (None = first run) and the cursor after them."""
        raise NotImplementedError(f"the {self.type} channel is not polled")

    async def confirm(self, key: str, cursor: Any) -> None:
        """Called after the messages up to ``cursor`` were committed (Telegram's offset)."""
        return None

    async def wait(self, key: str, cursor: Any | None, timeout: float) -> None:
        """Wait until new messages may be there (IMAP IDLE); the default sleeps ``timeout``."""
        await asyncio.sleep(timeout)

    # push channels (web, WhatsApp webhook): run until cancelled, calling sink for each message
    async def serve(self, sink: InboundSink) -> None:
        return None

    def parse_raw(self, raw: bytes) -> InboundMessage | None:
        """Parse raw bytes kept in the ledger again (``quarantine retry``); raise ParseError
        when they still cannot be parsed. None: this channel keeps its raw form for a person
        to read only (the default)."""
        return None

    @classmethod
    def reply_id(cls, sender: str) -> str:
        """The id a reply gets when it is queued, before it is sent ("": none; send() returns
        the peer's ids). ``sender`` is the channel's own address (``from_address``)."""
        return ""

    @classmethod
    def approved_templates(cls, config: ChannelConfigBase) -> list[str]:
        """Message templates the channel's provider approved, for use outside a reply window."""
        return []

    # outbound
    @abstractmethod
    async def send(self, msg: OutboundMessage) -> SendResult:
        """Deliver one message; raise SendError(permanent=..., retry_after=...)."""
