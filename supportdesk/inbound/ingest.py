"""Ingest: dedupe -> identity -> threading -> ticket/message, in the caller's transaction.

Every inbound message records why it joined its ticket (``thread_reason``).

One code path serves a single live message and an import of thousands: ``ingest_many`` looks
up everything a batch needs in a handful of queries (known Message-IDs, identities, tickets),
threads the messages in memory (a reply may follow its question within the same batch), then
writes tickets, messages, events and the search index in a few bulk statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from supportdesk.channels.base import InboundMessage
from supportdesk.desk.desk import Desk
from supportdesk.inbound.batch import IngestResult, Outcome, reply_address
from supportdesk.inbound.writing import Batch
from supportdesk.store.models import (
    Quarantine,
    utcnow,
)

__all__ = ["IngestResult", "Outcome", "ingest", "ingest_many", "quarantine", "reply_address"]


def ingest_many(
    session: Session,
    desk: Desk,
    msgs: Sequence[InboundMessage],
    *,
    historical: bool = False,
    raw_sha256s: Sequence[str | None] | None = None,
    now: datetime | None = None,
    stems: Sequence[tuple[str, ...] | None] | None = None,
) -> list[IngestResult]:
    """Store normalized inbound messages in order; the caller commits (with its cursor).

    ``stems`` (from the import's parser processes, see import_prep.stems_of) saves stemming
    the text for the search index here.
    """
    batch = Batch(session, desk, historical=historical, now=now or utcnow())
    existing = batch.prefetch(msgs)
    shas = list(raw_sha256s) if raw_sha256s is not None else [None] * len(msgs)
    if stems is not None:
        batch.stems = {i: st for i, st in enumerate(stems) if st is not None}
    for i, (msg, sha) in enumerate(zip(msgs, shas, strict=True)):
        batch.place(i, msg, sha, existing)
    batch.write()
    return batch.finish()


def ingest(
    session: Session,
    desk: Desk,
    msg: InboundMessage,
    *,
    historical: bool = False,
    raw_sha256: str | None = None,
    now: datetime | None = None,
) -> IngestResult:
    """Store one normalized inbound message. The caller commits (with its cursor)."""
    return ingest_many(
        session, desk, [msg], historical=historical, raw_sha256s=[raw_sha256], now=now
    )[0]


def quarantine(
    session: Session, *, channel: str, source: str, raw_sha256: str, error: str
) -> Quarantine:
    """Keep a message that could not be understood; the rest of the batch goes on."""
    row = session.exec(
        select(Quarantine).where(
            Quarantine.raw_sha256 == raw_sha256, col(Quarantine.resolved_at).is_(None)
        )
    ).first()
    if row is not None:
        row.attempts += 1
        row.error = error[:1000]
        session.add(row)
        return row
    row = Quarantine(
        channel=channel, source=source[:500], raw_sha256=raw_sha256, error=error[:1000]
    )
    session.add(row)
    return row
