"""Delivery reports from a channel's peer (WhatsApp ``statuses``), recorded on outbox rows.

A report names the message by the id ``send()`` returned (``wa:<wamid>``) and by what we sent
along with it (``outbox:<row>:<part>``). Its status goes into the row's payload
(``delivery``: status, time, error; statuses only move forward: sent < delivered < read, and
failed is kept), with an audit event. A report for a row that is not marked sent yet -- the
runner died between the API's answer and its commit -- marks it sent: the peer just said the
message went out, so it is never sent again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from sqlmodel import Session, select

from supportdesk.channels.base import DeliveryReport
from supportdesk.desk import audit as events
from supportdesk.desk.desk import Desk
from supportdesk.sla import clocks as sla
from supportdesk.store.models import Message, Outbox, Ticket, utcnow

RANK = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}
_CORRELATION = re.compile(r"^outbox:(\d+):(\d+)$")


def record_delivery(
    session: Session, desk: Desk, channel: str, reports: Sequence[DeliveryReport]
) -> int:
    """Apply the reports; returns how many rows changed."""
    changed = 0
    for rep in reports:
        row = _row_for(session, channel, rep)
        if row is None:
            continue
        payload = json.loads(row.payload or "{}")
        before = payload.get("delivery") or {}
        if RANK.get(rep.status, 0) <= RANK.get(str(before.get("status")), 0):
            continue
        at = rep.at or utcnow()
        payload["delivery"] = {"status": rep.status, "at": at.isoformat(), "error": rep.error}
        row.payload = json.dumps(payload, ensure_ascii=False)
        if rep.status in ("sent", "delivered", "read") and row.state != "sent":
            _reconcile(session, row, rep, at)
        elif rep.status == "failed" and rep.error:
            row.last_error = f"{channel} reports the message failed: {rep.error}"
        session.add(row)
        events.record(
            session,
            f"delivery_{rep.status}" if rep.status in RANK else "delivery",
            agent="system",
            ticket_id=row.ticket_id,
            message_id=row.message_id,
            outbox_id=row.id,
            external_id=rep.external_id,
            error=rep.error or None,
        )
        changed += 1
    return changed


def _row_for(session: Session, channel: str, rep: DeliveryReport) -> Outbox | None:
    if rep.external_id:
        row = session.exec(
            select(Outbox).where(
                Outbox.channel == channel, Outbox.external_message_id == rep.external_id
            )
        ).first()
        if row is not None:
            return row
        msg = session.exec(select(Message).where(Message.message_id == rep.external_id)).first()
        if msg is not None and msg.id is not None:
            row = session.exec(
                select(Outbox).where(Outbox.channel == channel, Outbox.message_id == msg.id)
            ).first()
            if row is not None:
                return row
    m = _CORRELATION.match(rep.correlation or "")
    if m:
        row = session.get(Outbox, int(m.group(1)))
        if row is not None and row.channel == channel:
            return row
    return None


def _reconcile(session: Session, row: Outbox, rep: DeliveryReport, at: object) -> None:
    now = utcnow()
    row.state = "sent"  # also settles a row left "in doubt" by a crash in mid-send
    row.sent_at = row.sent_at or now
    row.lease_until = None
    row.claim_epoch = None
    row.in_flight_at = None
    row.last_error = ""
    if rep.external_id and not row.external_message_id:
        row.external_message_id = rep.external_id
    if row.message_id:
        msg = session.get(Message, row.message_id)
        if msg is not None and not msg.message_id and rep.external_id:
            msg.message_id = rep.external_id
            session.add(msg)
        if msg is not None and msg.direction == "out" and not msg.is_auto and row.ticket_id:
            t = session.get(Ticket, row.ticket_id)
            if t is not None and (t.first_response_at is None or t.first_response_at > now):
                t.first_response_at = row.sent_at
                t.updated_at = max(t.updated_at, utcnow())  # a clock column (store/slamark.py)
                sla.refresh_due(t)
                session.add(t)


def delivery_of_row(row: Outbox) -> dict[str, str]:
    """The latest delivery report on a row ({} when none came)."""
    try:
        got = json.loads(row.payload or "{}").get("delivery") or {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in got.items()} if isinstance(got, dict) else {}
