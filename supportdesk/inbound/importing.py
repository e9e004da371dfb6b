"""Import of .eml files, mbox files and Maildir folders (and the IMAP runner's batches).

The raw bytes go to the content-addressed ledger first; parsing happens in worker processes
(both cores); the ingest runs in batched write transactions. A message that cannot be parsed
goes to quarantine with its reason and the rest goes on. Idempotent: a second run adds nothing.
"""

from __future__ import annotations

import gc
import os
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from supportdesk.channels.base import InboundMessage
from supportdesk.desk.desk import Desk, ServiceError
from supportdesk.inbound.ingest import IngestResult, ingest, ingest_many, quarantine
from supportdesk.inbound.prep import Prepared, Preparer, keep_raw, parse
from supportdesk.store.files import sha256_hex, store_raw

BATCH = 1000  # messages per write transaction


@dataclass
class ImportSummary:
    seen: int = 0
    imported: int = 0
    duplicates: int = 0
    quarantined: int = 0
    unreadable: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    new_tickets: list[int] = field(default_factory=list)
    acks: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seen": self.seen,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
            "unreadable": self.unreadable,
            "new_tickets": len(self.new_tickets),
            "outcomes": dict(self.outcomes),
        }


def _parse_chunk(chunk: list[bytes]) -> list[tuple[InboundMessage | None, str | None]]:
    out = []
    for data in chunk:
        msg, err = parse(data)
        if msg is not None:
            msg.raw = None  # the ledger has the bytes; don't ship them back across processes
        out.append((msg, err))
    return out


def parse_many(
    datas: list[bytes], pool: ProcessPoolExecutor | None
) -> list[tuple[InboundMessage | None, str | None]]:
    if pool is None or len(datas) < 64:
        return _parse_chunk(datas)
    n = max(1, len(datas) // (2 * (getattr(pool, "_max_workers", 1) or 1)))
    parts = [datas[i : i + n] for i in range(0, len(datas), n)]
    out: list[tuple[InboundMessage | None, str | None]] = []
    for res in pool.map(_parse_chunk, parts):
        out.extend(res)
    return out


def store_batch(
    desk: Desk,
    items: list[tuple[str, bytes]],
    parsed: list[tuple[InboundMessage | None, str | None]],
    *,
    channel: str,
    historical: bool,
    summary: ImportSummary,
    extra_in_tx: Callable[[Any], None] | None = None,
    shas: list[str] | None = None,
    stems: list[tuple[str, str, str] | None] | None = None,
) -> list[IngestResult]:
    """Ingest one batch in one write transaction (``extra_in_tx`` commits a cursor with it).

    ``shas`` says the raw bytes are in the ledger already (written by the parser workers);
    ``stems`` is what the workers stemmed for the search index.
    """
    if shas is None:
        # synced before the database says it has the messages
        shas = keep_raw(desk.home, [data for _src, data in items])
    results: list[IngestResult] = []
    with desk.db.write() as s:
        good: list[tuple[str, str, InboundMessage]] = []
        good_stems: list[tuple[str, str, str] | None] = []
        all_stems = stems if stems is not None else [None] * len(items)
        for (src, _data), sha, (msg, err), st in zip(items, shas, parsed, all_stems, strict=True):
            summary.seen += 1
            if msg is None:
                quarantine(
                    s, channel=channel, source=src, raw_sha256=sha, error=err or "unparsable"
                )
                summary.quarantined += 1
                summary.outcomes["quarantined"] += 1
                continue
            msg.channel = channel
            good.append((src, sha, msg))
            good_stems.append(st)
        try:
            with s.begin_nested():
                pairs = list(
                    zip(
                        good,
                        ingest_many(
                            s,
                            desk,
                            [m for _s, _h, m in good],
                            historical=historical,
                            raw_sha256s=[h for _s, h, _m in good],
                            stems=good_stems,
                        ),
                        strict=True,
                    )
                )
        except Exception:
            # one message the store refuses must not sink the batch: go one by one
            s.expunge_all()
            pairs = []
            for src, sha, msg in good:
                try:
                    with s.begin_nested():
                        pairs.append(
                            (
                                (src, sha, msg),
                                ingest(s, desk, msg, historical=historical, raw_sha256=sha),
                            )
                        )
                except Exception as exc:
                    quarantine(
                        s,
                        channel=channel,
                        source=src,
                        raw_sha256=sha,
                        error=f"could not be stored: {type(exc).__name__}: {exc}",
                    )
                    summary.quarantined += 1
                    summary.outcomes["quarantined"] += 1
        for (_src, _sha, msg), res in pairs:
            summary.outcomes[res.outcome] += 1
            if res.outcome == "duplicate":
                summary.duplicates += 1
            elif res.outcome != "updated":
                summary.imported += 1
            if res.outcome == "new_ticket" and res.ticket_id:
                summary.new_tickets.append(res.ticket_id)
            if res.needs_ack and res.ticket_id:
                from supportdesk.inbound.ack import queue_ack
                from supportdesk.store.models import Ticket

                t = s.get(Ticket, res.ticket_id)
                if t is not None and queue_ack(s, desk, t, msg.sender_address) is not None:
                    summary.acks.append(res.ticket_id)
            results.append(res)
        if extra_in_tx is not None:
            extra_in_tx(s)
    return results


def import_items(
    desk: Desk,
    items: Iterable[Any] | None = None,
    *,
    channel: str,
    historical: bool = True,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    prepared: Preparer | None = None,
) -> ImportSummary:
    """Import raw messages (``RawItem``/``FileRef`` from connectors.files).

    ``prepared`` is a Preparer started earlier on the same items (the CLI starts one before it
    loads the database layer); otherwise one is made here.
    """
    summary = ImportSummary()
    if prepared is None:
        workers = workers if workers is not None else min(2, os.cpu_count() or 1)
        prepared = Preparer(desk.home, items or (), workers=workers)
    batch: list[Prepared] = []
    # what is alive now (modules, the desk) lives on: the collector need not look at it again
    gc.freeze()
    try:
        with prepared:
            for chunk in prepared:
                batch.extend(chunk)
                if len(batch) >= BATCH:
                    _store_prepared(desk, batch, channel, historical, summary, progress)
                    batch = []
            if batch:
                _store_prepared(desk, batch, channel, historical, summary, progress)
    except BrokenProcessPool:
        raise ServiceError(
            f"a parser process stopped unexpectedly (out of memory?) after {summary.seen} "
            "messages; they are stored, and the same import run again adds the rest"
        ) from None
    finally:
        gc.unfreeze()
    if summary.imported >= 1000:
        desk.db.analyze()  # a big import changes the data's shape: refresh the planner's statistics
    return summary


def _store_prepared(
    desk: Desk,
    batch: list[Prepared],
    channel: str,
    historical: bool,
    summary: ImportSummary,
    progress: Callable[[int], None] | None,
) -> None:
    good = [p for p in batch if not p.unreadable]
    for p in good:
        if p.data is not None:
            # a message that failed to parse keeps a file of its own (synced): easy to look
            # at, and what `quarantine retry` reads
            store_raw(desk.home, p.data)
    unreadable = [p for p in batch if p.unreadable]

    def record_unreadable(s: Any) -> None:
        for p in unreadable:
            summary.unreadable += 1
            summary.seen += 1
            summary.outcomes["unreadable"] += 1
            if p.error:
                # an unreadable file has no bytes to keep; record it so nothing is silent
                quarantine(
                    s,
                    channel=channel,
                    source=p.source,
                    raw_sha256=sha256_hex(p.source.encode()),
                    error=p.error,
                )

    store_batch(
        desk,
        [(p.source, b"") for p in good],
        [(p.msg, p.error) for p in good],
        channel=channel,
        historical=historical,
        summary=summary,
        shas=[p.sha or "" for p in good],
        stems=[p.stems for p in good],
        extra_in_tx=record_unreadable if unreadable else None,
    )
    if progress:
        progress(len(batch))


def default_email_channel(desk: Desk) -> str:
    for ch in desk.config.channel:
        if ch.type == "email":
            return ch.name
    return "email"


def retry_quarantine(desk: Desk, ids: list[int] | None = None) -> ImportSummary:
    """Parse quarantined raw messages again (after a fix) and ingest those that now parse."""
    from sqlmodel import col, select

    from supportdesk.store.ledger import read_raw
    from supportdesk.store.models import Quarantine, utcnow

    summary = ImportSummary()
    with desk.db.read() as s:
        q = select(Quarantine).where(col(Quarantine.resolved_at).is_(None))
        if ids:
            q = q.where(col(Quarantine.id).in_(ids))
        rows = list(s.exec(q).all())
    telegram = {ch.name for ch in desk.config.channel if ch.type == "telegram"}
    for row in rows:
        if row.channel in telegram:
            # kept as the Bot API's JSON for a person to read; only mail is parsed again here
            summary.quarantined += 1
            continue
        try:
            data = read_raw(desk.home, row.raw_sha256)
        except (OSError, ValueError):
            summary.unreadable += 1
            continue
        if sha256_hex(data) != row.raw_sha256:
            # the ledger file was damaged: never ingest bytes that are not the ones we received
            with desk.db.write() as s:
                r = s.get(Quarantine, row.id)
                if r is not None:
                    r.attempts += 1
                    r.error = "the raw file in the ledger is damaged (its checksum does not match)"
                    s.add(r)
            summary.unreadable += 1
            continue
        msg, err = parse(data)
        if msg is None:
            with desk.db.write() as s:
                r = s.get(Quarantine, row.id)
                if r is not None:
                    r.attempts += 1
                    r.error = err or r.error
                    s.add(r)
            summary.quarantined += 1
            continue
        msg.channel = row.channel or default_email_channel(desk)
        with desk.db.write() as s:
            res = ingest(s, desk, msg, historical=True, raw_sha256=row.raw_sha256)
            r = s.get(Quarantine, row.id)
            if r is not None:
                r.resolved_at = utcnow()
                s.add(r)
        summary.outcomes[res.outcome] += 1
        if res.outcome == "duplicate":
            summary.duplicates += 1
        else:
            summary.imported += 1
    return summary
