"""The breach test, on its own so that the quick read path (no model classes) shares it."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def is_breached(ticket: Any, now: datetime) -> bool:
    """A deadline that applies now has passed (or a breach was already recorded). ``ticket``
    is a Ticket or a row with the same attributes (``store.reads.TicketRow``)."""
    return bool(ticket.sla_breached or (ticket.due_at is not None and ticket.due_at < now))
