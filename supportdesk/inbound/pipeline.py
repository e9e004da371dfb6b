"""The one inbound pipeline, for every channel and for file imports.

For a batch of :class:`InboundMessage` objects from one channel:

1. raw ledger: the bytes as received are kept (synced) before the database has the messages;
2. parse/normalise happened in the channel (or in the import's parser processes); a message
   whose bytes could not be parsed carries ``parse_error`` and goes to quarantine;
3. in one write transaction: button presses (CSAT ratings) are handled, the rest is ingested
   (dedupe, identity, threading, ticket/message, audit), a message the store refuses is
   quarantined without sinking the batch, conversation openers are greeted, new tickets'
   acknowledgements are queued (held), and the channel's cursor is written;
4. after the commit, the acknowledgements' template renders outside any transaction and a
   short transaction releases them (inbound/ack.py);
5. the caller confirms to the channel only after this returned (the commit happened).

The runner calls :func:`store` for polled batches; push channels reach it through
:class:`~supportdesk.inbound.push.DeskSink`; ``supportdesk import`` through inbound/importing.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from supportdesk.automation import hook as automation_hook
from supportdesk.channels.base import InboundMessage, Stored
from supportdesk.core.config import ConfigError
from supportdesk.core.i18n import pick_language, translations
from supportdesk.desk.desk import Desk
from supportdesk.inbound.ack import finish_acks, queue_ack
from supportdesk.inbound.ingest import IngestResult, ingest, ingest_many, quarantine, reply_address
from supportdesk.inbound.prep import keep_raw
from supportdesk.outbound.outbox import queue_plain
from supportdesk.replies import csat
from supportdesk.store.cursors import set_cursor
from supportdesk.store.files import store_raw
from supportdesk.store.models import Ticket

log = logging.getLogger("supportdesk.inbound.pipeline")

# translated through the catalogs (core/locale) at the time of use, in the desk's language
GREETING = "Hello! This is {desk} support. Write your question and we will answer."


@dataclass
class Summary:
    """What one or more batches did (``import``'s report, the runner's channel report)."""

    seen: int = 0
    imported: int = 0
    duplicates: int = 0
    quarantined: int = 0
    unreadable: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why): not mail
    outcomes: Counter[str] = field(default_factory=Counter)
    new_tickets: list[int] = field(default_factory=list)
    acks: list[int] = field(default_factory=list)
    greetings: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "seen": self.seen,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
            "unreadable": self.unreadable,
            "skipped": len(self.skipped),
            "skipped_files": [{"file": f, "reason": why} for f, why in self.skipped],
            "new_tickets": len(self.new_tickets),
            "outcomes": dict(self.outcomes),
        }


def keep_in_ledger(desk: Desk, messages: Sequence[InboundMessage]) -> list[str | None]:
    """Keep each message's raw bytes in the ledger (synced); their hashes (None: no bytes)."""
    idx = [i for i, m in enumerate(messages) if m.raw is not None]
    shas: list[str | None] = [None] * len(messages)
    if idx:
        for i, sha in zip(
            idx, keep_raw(desk.home, [messages[i].raw or b"" for i in idx]), strict=True
        ):
            shas[i] = sha
    return shas


def store(
    desk: Desk,
    messages: Sequence[InboundMessage],
    *,
    channel: str,
    historical: bool = False,
    summary: Summary | None = None,
    cursor: tuple[str, Any] | None = None,
    shas: Sequence[str | None] | None = None,
    stems: Sequence[tuple[str, ...] | None] | None = None,
    extra_in_tx: Callable[[Session], None] | None = None,
) -> list[Stored]:
    """Run the pipeline over one batch of ``channel``; returns after the commit.

    ``cursor`` = (key, value) is written in the same transaction. ``shas`` says the raw bytes
    are in the ledger already (the import's parser processes kept them); ``stems`` is what those
    processes stemmed for the search index.
    """
    summary = summary if summary is not None else Summary()
    if shas is None:
        shas = keep_in_ledger(desk, messages)
    all_stems = list(stems) if stems is not None else [None] * len(messages)
    out: list[Stored | None] = [None] * len(messages)
    held: list[int] = []  # acknowledgements queued in the transaction, their text to render
    with desk.db.write() as s:
        good: list[int] = []
        for i, msg in enumerate(messages):
            msg.channel = channel
            if msg.parse_error:
                summary.seen += 1
                _quarantine(s, desk, msg, shas[i], msg.parse_error, summary)
                out[i] = Stored(msg.source or msg.external_id, None, None, "quarantined")
            elif msg.extra.get("callback_data") is not None:
                _button(s, desk, msg)
                out[i] = Stored(msg.external_id, None, None, "ignored")
            else:
                summary.seen += 1
                good.append(i)
        results = _ingest(s, desk, messages, shas, all_stems, good, historical, summary)
        for i, res in results:
            msg = messages[i]
            out[i] = Stored(msg.external_id, res.ticket_id, res.message_id, res.outcome)
            _after_ingest(s, desk, msg, res, summary, held)
        if cursor is not None:
            set_cursor(s, channel, cursor[0], cursor[1])
        if extra_in_tx is not None:
            extra_in_tx(s)
    if held:
        try:
            finish_acks(desk, held)  # the template renders now, outside any transaction
        except Exception as exc:  # intake is committed; the runner finishes held acks later
            log.warning("acknowledgements left for the runner to finish: %s", exc)
    if not historical:
        automation_hook.after_inbound_commit(desk)  # rules run after the commit, off this path
    return [o for o in out if o is not None]


def _ingest(
    s: Session,
    desk: Desk,
    messages: Sequence[InboundMessage],
    shas: Sequence[str | None],
    stems: Sequence[tuple[str, ...] | None],
    good: list[int],
    historical: bool,
    summary: Summary,
) -> list[tuple[int, IngestResult]]:
    """Ingest the batch in one go; when the store refuses it, one by one, quarantining the
    messages it refuses (one bad message must not sink the batch)."""
    if not good:
        return []
    try:
        with s.begin_nested():
            got = ingest_many(
                s,
                desk,
                [messages[i] for i in good],
                historical=historical,
                raw_sha256s=[shas[i] for i in good],
                stems=[stems[i] for i in good],
            )
        return list(zip(good, got, strict=True))
    except Exception:
        s.expunge_all()
    pairs: list[tuple[int, IngestResult]] = []
    for i in good:
        msg = messages[i]
        try:
            with s.begin_nested():
                pairs.append((i, ingest(s, desk, msg, historical=historical, raw_sha256=shas[i])))
        except Exception as exc:
            error = f"could not be stored: {type(exc).__name__}: {exc}"
            _quarantine(s, desk, msg, shas[i], error, summary)
    return pairs


def _quarantine(
    s: Session, desk: Desk, msg: InboundMessage, sha: str | None, error: str, summary: Summary
) -> None:
    if sha is None:
        # no raw bytes (a message built by a channel): keep what it said, readable
        blob = json.dumps(
            {"external_id": msg.external_id, "text": msg.text, "extra": msg.extra},
            ensure_ascii=False,
            default=str,
        ).encode()
        sha = store_raw(desk.home, blob)
    source = msg.source or msg.external_id
    quarantine(s, channel=msg.channel, source=source, raw_sha256=sha, error=error)
    summary.quarantined += 1
    summary.outcomes["quarantined"] += 1


def _button(s: Session, desk: Desk, msg: InboundMessage) -> None:
    """A button press (a CSAT rating); the channel answers it with ``callback_answer``."""
    with s.begin_nested():
        handled = bool(csat.handle_inbound_callback(s, desk, msg))
    if not handled:
        msg.extra["callback_answer"] = ""


def _after_ingest(
    s: Session,
    desk: Desk,
    msg: InboundMessage,
    res: IngestResult,
    summary: Summary,
    held: list[int],
) -> None:
    summary.outcomes[res.outcome] += 1
    if res.outcome == "duplicate":
        summary.duplicates += 1
    elif res.outcome not in ("updated", "ignored"):
        summary.imported += 1
    if res.is_start:
        greet(s, desk, msg)
        summary.greetings += 1
        return
    if res.outcome == "new_ticket" and res.ticket_id:
        summary.new_tickets.append(res.ticket_id)
    if res.needs_ack and res.ticket_id:
        t = s.get(Ticket, res.ticket_id)
        if t is not None:
            ack = queue_ack(s, desk, t, msg.sender_address)
            if ack is not None and ack.id is not None:
                summary.acks.append(res.ticket_id)
                held.append(ack.id)


def greeting_text(desk: Desk, channel: str) -> str:
    """The channel's own greeting, else the default one in the desk's language."""
    try:
        own = desk.config.channel_named(channel).greeting
    except ConfigError:
        own = None
    if own:
        return own
    lang = pick_language(desk.config.desk.language, env={})
    return translations(lang).gettext(GREETING).format(desk=desk.config.desk.name)


def greet(s: Session, desk: Desk, msg: InboundMessage) -> None:
    """Answer a conversation's opener (Telegram /start): queued, not a ticket."""
    queue_plain(
        s,
        channel=msg.channel,
        kind=msg.kind,
        to_address=reply_address(msg) or msg.sender_address,
        text=greeting_text(desk, msg.channel),
    )
