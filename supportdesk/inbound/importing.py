"""Import of .eml files, mbox files and Maildir folders, through the one inbound pipeline.

The raw bytes go to the content-addressed ledger first; parsing happens in worker processes
(both cores); the ingest runs in batched write transactions. A message that cannot be parsed
goes to quarantine with its reason and the rest goes on. Idempotent: a second run adds nothing.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from supportdesk.channels.email.channel import failed_parse
from supportdesk.channels.registry import channel_kind, make_channel
from supportdesk.desk.desk import BadInput, Desk, ServiceError
from supportdesk.inbound import pipeline
from supportdesk.inbound.ingest import quarantine
from supportdesk.inbound.pipeline import Summary
from supportdesk.inbound.prep import Prepared, Preparer, parse
from supportdesk.store.files import sha256_hex, store_raw

BATCH = 2500  # messages per write transaction (about half a second of the write lock)


def import_items(
    desk: Desk,
    items: Iterable[Any] | None = None,
    *,
    channel: str,
    historical: bool = True,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    prepared: Preparer | None = None,
) -> Summary:
    """Import raw messages (``RawItem``/``FileRef`` from connectors.files).

    ``prepared`` is a Preparer started earlier on the same items (the CLI starts one before it
    loads the database layer); otherwise one is made here.
    """
    summary = Summary()
    if prepared is None:
        workers = workers if workers is not None else min(2, os.cpu_count() or 1)
        prepared = Preparer(desk.home, items or (), workers=workers)
    batch: list[Prepared] = []
    # what is alive now (modules, the desk) lives on: the collector need not look at it again;
    # and it runs once after each batch instead of whenever allocations pile up (a batch makes
    # hundreds of thousands of objects, most of them alive until it is stored: the automatic
    # collections walked them again and again, 5% of the storing process's instructions)
    gc.freeze()
    collecting = gc.isenabled()
    gc.disable()
    try:
        with prepared, desk.db.bulk_writes():
            for chunk in prepared:
                batch.extend(chunk)
                if len(batch) >= BATCH:
                    _store_prepared(desk, batch, channel, historical, summary, progress)
                    batch = []
                    if collecting:
                        gc.collect()
            if batch:
                _store_prepared(desk, batch, channel, historical, summary, progress)
    except BrokenProcessPool:
        raise ServiceError(
            f"a parser process stopped unexpectedly (out of memory?) after {summary.seen} "
            "messages; they are stored, and the same import run again adds the rest"
        ) from None
    finally:
        if collecting:
            gc.enable()
        gc.unfreeze()
    if summary.imported >= 1000:
        desk.db.analyze()  # a big import changes the data's shape: refresh the planner's statistics
    return summary


def _store_prepared(
    desk: Desk,
    batch: list[Prepared],
    channel: str,
    historical: bool,
    summary: Summary,
    progress: Callable[[int], None] | None,
) -> None:
    summary.skipped.extend((p.source, p.skipped) for p in batch if p.skipped is not None)
    batch = [p for p in batch if p.skipped is None]
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

    pipeline.store(
        desk,
        [p.msg or failed_parse(None, p.source, p.error or "unparsable") for p in good],
        channel=channel,
        historical=historical,
        summary=summary,
        shas=[p.sha or "" for p in good],
        stems=[p.stems for p in good],
        extra_in_tx=record_unreadable if unreadable else None,
    )
    if progress:
        progress(len(batch))


def email_channel(desk: Desk, name: str | None = None) -> str:
    """The channel imported mail lands on: ``name`` (a configured channel whose customers'
    addresses are e-mail addresses), else the first such channel ("email" when none is)."""
    if name is not None:
        if channel_kind(desk.config.channel_named(name)) != "email":
            raise BadInput(f"channel {name!r} is not an e-mail channel")
        return name
    for ch in desk.config.channel:
        if channel_kind(ch) == "email":
            return ch.name
    return "email"


def retry_quarantine(desk: Desk, ids: list[int] | None = None) -> Summary:
    """Parse quarantined raw messages again (after a fix) and ingest those that now parse."""
    from sqlmodel import col, select

    from supportdesk.store.ledger import read_raw
    from supportdesk.store.models import Quarantine, utcnow

    summary = Summary()
    with desk.db.read() as s:
        q = select(Quarantine).where(col(Quarantine.resolved_at).is_(None))
        if ids:
            q = q.where(col(Quarantine.id).in_(ids))
        rows = list(s.exec(q).all())
    # a channel parses its own raw form again; rows of no configured channel are mail from an
    # import
    parsers = {
        cfg.name: make_channel(cfg, home=desk.home, desk_name=desk.config.desk.name).parse_raw
        for cfg in desk.config.channel
    }
    for row in rows:
        parse_one = parsers.get(row.channel)
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
        msg, err = parse(data, parse_one)
        if msg is None and err is None:
            # kept as the channel received it (Bot API JSON) for a person to read
            summary.quarantined += 1
            continue
        if msg is None:
            with desk.db.write() as s:
                r = s.get(Quarantine, row.id)
                if r is not None:
                    r.attempts += 1
                    r.error = err or r.error
                    s.add(r)
            summary.quarantined += 1
            continue

        def resolved(s: Any, row_id: int | None = row.id) -> None:
            r = s.get(Quarantine, row_id)
            if r is not None:
                r.resolved_at = utcnow()
                s.add(r)

        pipeline.store(
            desk,
            [msg],
            channel=row.channel or email_channel(desk),
            historical=True,
            summary=summary,
            shas=[row.raw_sha256],
            extra_in_tx=resolved,
        )
    return summary
