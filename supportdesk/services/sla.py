"""SLA targets and due times.

Targets come from config: the defaults, then the channel's, then the priority's (tighter wins
for the priority). Durations count in business hours when ``[desk.hours]`` is set.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from supportdesk.config import Config, parse_duration
from supportdesk.services.hours import BusinessHours
from supportdesk.store.models import Ticket


def targets(config: Config, channel_kind: str, channel_name: str, priority: str) -> tuple[timedelta, timedelta]:
    sla = config.sla
    first = parse_duration(sla.first_response)
    resolution = parse_duration(sla.resolution)
    for key in (channel_kind, channel_name):
        over = sla.channel.get(key)
        if over:
            if over.first_response:
                first = parse_duration(over.first_response)
            if over.resolution:
                resolution = parse_duration(over.resolution)
    pover = sla.priority.get(priority)
    if pover:
        if pover.first_response:
            first = min(first, parse_duration(pover.first_response))
        if pover.resolution:
            resolution = min(resolution, parse_duration(pover.resolution))
    return first, resolution


def apply_due_times(config: Config, ticket: Ticket) -> None:
    """Set the ticket's first-response and resolution due times from its creation time."""
    first, resolution = targets(config, ticket.kind, ticket.channel, ticket.priority)
    hours = BusinessHours.from_config(config)
    paused = timedelta(seconds=ticket.sla_paused_seconds or 0)
    start = ticket.created_at
    ticket.first_response_due_at = hours.add(start, first)
    ticket.resolution_due_at = hours.add(start, resolution) + paused
    refresh_due(ticket)


def refresh_due(ticket: Ticket) -> None:
    """``due_at``: the deadline that applies now (none when solved, closed or waiting)."""
    if ticket.status in ("solved", "closed") or ticket.status == "pending":
        ticket.due_at = None
    elif ticket.first_response_at is None:
        ticket.due_at = ticket.first_response_due_at
    else:
        ticket.due_at = ticket.resolution_due_at


def promised_response(config: Config, channel_kind: str, channel_name: str, priority: str = "normal") -> timedelta:
    return targets(config, channel_kind, channel_name, priority)[0]


def humanize(delta: timedelta, language: str = "en") -> str:
    secs = int(delta.total_seconds())
    if language.startswith("ru"):
        units = [(86400, "дн."), (3600, "ч"), (60, "мин")]
    else:
        units = [(86400, "d"), (3600, "h"), (60, "min")]
    parts = []
    for size, label in units:
        if secs >= size:
            parts.append(f"{secs // size} {label}")
            secs %= size
    return " ".join(parts[:2]) or ("1 мин" if language.startswith("ru") else "1 min")


def is_breached(ticket: Ticket, now: datetime) -> bool:
    return ticket.due_at is not None and ticket.due_at < now
