"""The state of one ingest batch and the plain data it works with (see inbound/ingest.py).

The batch is one class in four layers, one module each: ``BatchState`` (here: what a batch
knows), ``Lookups`` (inbound/lookup.py: the few queries for the whole batch, customers),
``Placing`` (inbound/placing.py: threading each message in memory) and ``Batch``
(inbound/writing.py: the bulk writes, the search index, the results).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlmodel import Session

from supportdesk.channels.base import InboundMessage
from supportdesk.desk.desk import Desk
from supportdesk.inbound.signatures import content_signature as content_signature
from supportdesk.inbound.signatures import reused_key as reused_key
from supportdesk.inbound.signatures import signature as signature
from supportdesk.sla import clocks as sla
from supportdesk.store.bulk import sequences
from supportdesk.store.models import (
    Customer,
    Identity,
    Message,
    Ticket,
)

Outcome = Literal["new_ticket", "joined", "duplicate", "updated", "outbound", "bounce", "ignored"]


@dataclass
class IngestResult:
    outcome: Outcome
    ticket_id: int | None = None
    message_id: int | None = None
    customer_id: int | None = None
    reason: str = ""
    needs_ack: bool = False
    is_start: bool = False


def address_list(addresses: list[str]) -> str:
    """At most 50 addresses, space-separated, without blanks or duplicates (hostile headers)."""
    if not addresses:
        return ""
    seen = dict.fromkeys(a.strip() for a in addresses[:50] if a and " " not in a.strip())
    return " ".join(a for a in seen if a)[:4000]


# The name a new customer of these kinds gets until they give one (a website visitor may write
# before saying who they are); ingest replaces it with the first name a message brings.
PLACEHOLDER_NAMES = {"web": "Website visitor"}


def reply_address(msg: InboundMessage) -> str:
    """Where replies to a messenger conversation go (``extra["chat_id"]``: a Telegram chat, a
    VK peer); "" = the customer's own address."""
    chat = msg.extra.get("chat_id")
    return "" if chat is None or chat == "" else str(chat)


def _first_line_subject(msg: InboundMessage) -> str:
    """A conversation's ticket subject: its first line (messages there have no subject)."""
    first = (msg.text or "").strip().splitlines()[0] if (msg.text or "").strip() else ""
    if not first and msg.attachments:
        first = "(" + ", ".join(a.filename for a in msg.attachments[:3]) + ")"
    first = first or "(no text)"
    return first[:80] + ("…" if len(first) > 80 else "")


class _Known:
    """An existing customer as a batch reads it (not an object the session tracks)."""

    def __init__(self, ident: int, name: str, merged_into_id: int | None) -> None:
        self.id = ident
        self.name = name
        self.merged_into_id = merged_into_id


def _later(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a


@dataclass
class _Placed:
    """What the batch decided for one message before anything is written."""

    msg: InboundMessage
    raw_sha256: str | None
    sent_at: datetime
    outbound: bool
    customer: Any
    ticket: Any
    created: bool
    reason: str
    message: Any = None
    reopened: bool = False
    rating: bool = False
    att_names: list[str] = field(default_factory=list)


class BatchState:
    def __init__(self, session: Session, desk: Desk, *, historical: bool, now: datetime):
        self.s = session
        self.desk = desk
        self.historical = historical
        self.now = now
        self.own = desk.own_addresses
        self.clock = sla.Deadlines(desk.config)
        self.results: list[IngestResult | None] = []
        self.placed: list[tuple[int, _Placed]] = []
        self.events: list[tuple[str, dict[str, Any], Any, Any, dict[str, Any]]] = []
        self.by_msgid: dict[str, Ticket] = {}  # Message-ID -> ticket, known and in this batch
        # (kind, normalized address) -> a new customer (Row) or an existing one (_Known)
        self.customers: dict[tuple[str, str], Any] = {}
        self.new_customers: list[tuple[Customer, Identity]] = []
        self.all_new_customers: list[tuple[Customer, Identity]] = []  # for the search index
        self.renamed: dict[int, Any] = {}  # existing customers whose name ingest set
        self.tickets: dict[int, Ticket] = {}
        self.open_chats: dict[tuple[int, str], Ticket] = {}
        self.new_tickets: list[Ticket] = []
        self.seen_keys: set[str] = set()
        self.signatures: dict[str, str] = {}  # dedupe key -> content signature (e-mail)
        self.dates: dict[str, datetime | None] = {}  # dedupe key -> its Date, where known
        self.reused: dict[int, str] = {}  # id(msg) -> its own key: a reused Message-ID
        self.stems: dict[int, tuple[str, ...]] = {}  # by position in the batch (prep.stems_of)
        self._keys: dict[int, tuple[str, str]] = {}  # id(message) -> its customer key
        self._ours: set[int] = set()  # id(message) of those sent from our own addresses
        self._titled: set[int] = set()  # id(ticket) of new tickets titled from the subject
        self._titles: dict[str, str] = {}  # channel name -> its type's title ("Telegram")
        self._msgs: Sequence[InboundMessage] = ()  # the batch, as prefetch saw it
        self._merged: dict[int, int | None] = {}  # customer id -> merged_into_id (as read)
        self._roots: dict[int, int] = {}  # customer id -> the customer merges lead to
        # id(ticket) -> addresses on its messages (To, Cc, authors), kept up to date as the
        # batch places messages; filled when a possible third party first needs it
        self._participants: dict[int, set[str]] = {}
        self._placed_by_ticket: dict[int, list[_Placed]] = {}  # id(ticket) -> placed on it
        self._placed_indexed = 0  # how much of ``placed`` is in _placed_by_ticket
        self._seqs: dict[str, str] | None = None

    def seqs(self, conn: Any) -> dict[str, str] | None:
        """PostgreSQL: the id sequences of the tables a batch inserts into, looked up once."""
        if self._seqs is None and conn.dialect.name == "postgresql":
            self._seqs = sequences(conn, [Customer, Identity, Ticket, Message])
        return self._seqs


def other_date(stored: datetime | None, msg: InboundMessage) -> bool:
    """Both have a Date and they differ by more than a second (a message without a Date
    header is stored at its arrival: that says nothing)."""
    if stored is None or msg.sent_at is None:
        return False
    a = stored if stored.tzinfo else stored.replace(tzinfo=UTC)
    b = msg.sent_at if msg.sent_at.tzinfo else msg.sent_at.replace(tzinfo=UTC)
    return abs((a - b).total_seconds()) > 1
