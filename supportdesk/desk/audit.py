"""The audit log."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlmodel import Session

from supportdesk.store.models import Event, utcnow


def _default(o: Any) -> Any:
    if isinstance(o, datetime):
        return o.isoformat()
    if isinstance(o, set):
        return sorted(o)
    return str(o)


def record(
    session: Session,
    kind: str,
    *,
    agent: str,
    ticket_id: int | None = None,
    customer_id: int | None = None,
    message_id: int | None = None,
    batch: str | None = None,
    at: datetime | None = None,
    **data: Any,
) -> Event:
    ev = Event(
        ticket_id=ticket_id,
        customer_id=customer_id,
        message_id=message_id,
        agent=agent,
        kind=kind,
        data=json.dumps(data, ensure_ascii=False, default=_default),
        batch=batch,
        created_at=at or utcnow(),
    )
    session.add(ev)
    return ev
