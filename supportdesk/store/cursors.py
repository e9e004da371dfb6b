"""Channel cursors: how far each channel's stream has been read (IMAP UID, update offset).

The inbound pipeline writes a cursor in the same transaction as the messages it covers.
"""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, select

from supportdesk.store.models import Cursor, utcnow


def get_cursor(session: Session, channel: str, key: str) -> Any:
    row = session.exec(select(Cursor).where(Cursor.channel == channel, Cursor.key == key)).first()
    return json.loads(row.value) if row is not None else None


def set_cursor(session: Session, channel: str, key: str, value: Any) -> None:
    row = session.exec(select(Cursor).where(Cursor.channel == channel, Cursor.key == key)).first()
    if row is None:
        row = Cursor(channel=channel, key=key, value="null")
    row.value = json.dumps(value)
    row.updated_at = utcnow()
    session.add(row)
