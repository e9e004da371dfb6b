"""What the website channel needs from the desk, as plain data (a stop-gap until base.py has it).

The channel never imports the store: storing a visitor's message and the few read-only
questions the widget asks (the visitor's conversation for a reconnect, KB suggestions, whether
anyone is online and the promised reply time) go through the InboundSink the runner gives
``serve``. The one extra write, ``forward_by_email``, hands an agent's reply to the desk's mail
when the visitor has gone and left an address.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from supportdesk.channels.base import InboundMessage, OutboundMessage


@dataclass(frozen=True)
class Stored:
    external_id: str
    ticket_id: int | None
    message_id: int | None
    outcome: Literal["new_ticket", "joined", "duplicate", "quarantined"] | str


@dataclass(frozen=True)
class ChatLine:
    """One line of a visitor's conversation: ``id`` is the message's external id (the client's
    id for the visitor's lines, ``web-out:...`` for replies), so a browser dedupes by it."""

    id: str
    direction: Literal["in", "out"] | str
    text: str
    at: datetime
    author: str = ""


@dataclass(frozen=True)
class Article:
    title: str
    slug: str
    snippet: str = ""


@dataclass(frozen=True)
class Availability:
    online: bool  # an agent is at the console now (and it is business hours)
    first_response: timedelta  # the promised reply time (SLA first response for the channel)


class InboundSink(Protocol):
    async def __call__(self, messages: list[InboundMessage]) -> list[Stored]: ...

    async def conversation(self, channel: str, address: str, limit: int = 100) -> list[ChatLine]:
        """The newest conversation of ``address`` (kind = the channel's identity kind) on
        ``channel``, oldest line first; agents' notes never appear."""
        ...

    async def suggest(self, text: str, limit: int = 3) -> list[Article]:
        """Public knowledge-base articles matching ``text`` (Russian and English stems)."""
        ...

    async def availability(self, channel: str) -> Availability: ...

    async def forward_by_email(
        self, channel: str, address: str, msg: OutboundMessage
    ) -> str | None:
        """The visitor has gone: queue ``msg`` by e-mail to the address they left (on the same
        ticket); returns that address, or None when there is none."""
        ...
