"""Reading the quarantine: messages that could not be understood, with their reasons.

Putting a message there is ``ingest.quarantine``; trying again is
``importing.retry_quarantine``.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from supportdesk.core.text import iso
from supportdesk.desk.desk import Desk, NotFound
from supportdesk.store.ledger import read_raw
from supportdesk.store.models import Quarantine

COLUMNS = [
    "id",
    "channel",
    "source",
    "error",
    "raw_sha256",
    "created_at",
    "attempts",
    "resolved_at",
]


def as_dict(row: Quarantine) -> dict[str, Any]:
    return {
        "id": row.id,
        "channel": row.channel,
        "source": row.source,
        "error": row.error,
        "raw_sha256": row.raw_sha256,
        "created_at": iso(row.created_at),
        "attempts": row.attempts,
        "resolved_at": iso(row.resolved_at),
    }


def list_entries(desk: Desk, *, include_resolved: bool = False) -> list[dict[str, Any]]:
    with desk.db.read() as session:
        q = select(Quarantine).order_by(col(Quarantine.id))
        if not include_resolved:
            q = q.where(col(Quarantine.resolved_at).is_(None))
        return [as_dict(r) for r in session.exec(q).all()]


def entry(desk: Desk, entry_id: int) -> tuple[dict[str, Any], bytes]:
    """One entry and its raw bytes (empty when the ledger file is gone or unreadable)."""
    with desk.db.read() as session:
        row = session.get(Quarantine, entry_id)
        if row is None:
            raise NotFound(f"there is no quarantine entry {entry_id}")
        try:
            data = read_raw(desk.home, row.raw_sha256)
        except (OSError, ValueError):
            data = b""
        return as_dict(row), data
