"""Customer-service windows (WhatsApp: 24 hours): may an agent write freely on a channel now?

A channel whose ``Capabilities.reply_window`` is set accepts a free-form reply only within that
time after the customer's last message on it; after that only one of the channel's approved
templates may be sent. The composer and ``tickets reply`` ask :func:`window_for` before the agent
writes, and the outbox refuses a free-form reply outside the window with one sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from supportdesk.channels.registry import channel_class
from supportdesk.core.config import ConfigError
from supportdesk.desk.desk import Desk
from supportdesk.store.models import Message, Ticket, utcnow


@dataclass(frozen=True)
class Window:
    channel: str
    title: str  # "WhatsApp"
    length: timedelta
    last_inbound: datetime | None  # the customer's last message on the channel
    templates: tuple[str, ...]  # the channel's approved templates ("name" or "name:lang")

    @property
    def closes_at(self) -> datetime | None:
        return self.last_inbound + self.length if self.last_inbound else None

    def open_at(self, now: datetime) -> bool:
        closes = self.closes_at
        return closes is not None and now < closes

    def closed_sentence(self) -> str:
        hours = round(self.length.total_seconds() / 3600)
        when = (
            f"closed at {self.closes_at:%Y-%m-%d %H:%M} UTC"
            if self.closes_at
            else "is not open (the customer never wrote on it)"
        )
        approved = ", ".join(self.templates) or "none configured"
        return (
            f"the {hours}-hour {self.title} window of channel {self.channel} {when}: only an "
            f"approved template can be sent (approved_template; approved: {approved})"
        )


def window_for(
    session: Session, desk: Desk, ticket: Ticket, channel: str | None = None
) -> Window | None:
    """The reply window of answering ``ticket`` on ``channel`` (its own by default); None when
    that channel has no such rule."""
    name = channel or ticket.channel
    try:
        cfg = desk.config.channel_named(name)
        cls = channel_class(cfg.type)
    except ConfigError:
        return None
    length = cls.capabilities.reply_window
    if length is None:
        return None
    last = session.exec(
        select(sa.func.max(Message.created_at))
        .join(Ticket, col(Ticket.id) == col(Message.ticket_id))
        .where(
            Ticket.customer_id == ticket.customer_id,
            Message.channel == name,
            Message.direction == "in",
        )
    ).one()
    if isinstance(last, datetime) and last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    templates = tuple(cls.approved_templates(cfg))
    return Window(name, cls.title, length, last if isinstance(last, datetime) else None, templates)


def window_notice(desk: Desk, ticket_id: int, channel: str | None = None) -> str | None:
    """One sentence for the composer when only a template may be sent now, else None."""
    with desk.db.read() as s:
        ticket = s.get(Ticket, ticket_id)
        if ticket is None:
            return None
        window = window_for(s, desk, ticket, channel)
    if window is None or window.open_at(utcnow()):
        return None
    text = window.closed_sentence()
    return text[0].upper() + text[1:] + "."
