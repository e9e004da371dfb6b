"""The desk's health: channels, runner, outbox and quarantine sizes."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, func, select

from supportdesk.core.text import iso
from supportdesk.desk.desk import Desk
from supportdesk.store.models import (
    OPEN_STATUSES,
    ChannelState,
    Lease,
    Outbox,
    Quarantine,
    Ticket,
    utcnow,
)


def desk_status(desk: Desk) -> dict[str, Any]:
    now = utcnow()
    with desk.db.read() as s:
        states = {c.channel: c for c in s.exec(select(ChannelState)).all()}
        counts = dict(s.exec(select(Outbox.state, func.count()).group_by(Outbox.state)).all())
        quarantined = s.exec(
            select(func.count())
            .select_from(Quarantine)
            .where(col(Quarantine.resolved_at).is_(None))
        ).one()
        open_count = s.exec(
            select(func.count()).select_from(Ticket).where(col(Ticket.status).in_(OPEN_STATUSES))
        ).one()
        lease = s.get(Lease, "runner")
    channels = []
    for ch in desk.config.channel:
        st = states.get(ch.name)
        if st is None:
            state = "never polled"
        elif st.last_error_at and (
            st.last_success_at is None or st.last_error_at > st.last_success_at
        ):
            state = "error"
        else:
            state = "ok"
        channels.append(
            {
                "name": ch.name,
                "type": ch.type,
                "state": state,
                "last_success_at": iso(st.last_success_at) if st else None,
                "last_error_at": iso(st.last_error_at) if st else None,
                "last_error": (st.last_error or None) if st else None,
                "failures": st.failures if st else 0,
            }
        )
    runner = None
    if lease is not None and lease.expires_at and lease.expires_at > now:
        runner = {
            "holder": lease.holder,
            "pid": lease.pid,
            "host": lease.host,
            "heartbeat_at": iso(lease.heartbeat_at),
        }
    return {
        "desk": desk.config.desk.name,
        "channels": channels,
        "runner": runner,
        "outbox": {
            k: int(counts.get(k, 0))
            for k in ("queued", "sending", "sent", "failed", "cancelled", "in_doubt", "dropped")
        },
        "quarantine": int(quarantined),
        "tickets": {"open": int(open_count)},
    }
