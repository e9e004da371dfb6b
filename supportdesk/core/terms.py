"""The desk's fixed vocabulary (DESIGN.md): ticket statuses and priorities, and the clock."""

from __future__ import annotations

from datetime import UTC, datetime

STATUSES = ("new", "open", "pending", "solved", "closed")
OPEN_STATUSES = ("new", "open", "pending")
PRIORITIES = ("low", "normal", "high", "urgent")
PRIORITY_RANK = {p: i for i, p in enumerate(PRIORITIES)}


def utcnow() -> datetime:
    return datetime.now(UTC)
