"""Content signatures of inbound messages: how ingest tells a reused Message-ID from a copy.

Free of SQLAlchemy and the models, so the import's parser processes (inbound/prep.py) work the
signatures out ahead of the store (``InboundMessage.signatures``), which then only reads them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

from supportdesk.channels.base import InboundMessage


def signature(
    sender: str,
    subject: str,
    text: str,
    quoted: str = "",
    date: datetime | None = None,
    attachments: Sequence[tuple[str, int]] = (),
) -> str:
    """A message's content signature: From, Date, Subject and the body (its words, the quoted
    part included and whitespace folded, and its attachments' names and sizes)."""
    words = " ".join(f"{text or ''} {quoted or ''}".split())
    when = ""
    if date is not None:
        utc = (date if date.tzinfo else date.replace(tzinfo=UTC)).astimezone(UTC)
        when = utc.replace(microsecond=0).isoformat()
    files = "\x01".join(f"{n}:{size}" for n, size in sorted(attachments))
    norm = "\x00".join(
        [(sender or "").strip().lower(), " ".join((subject or "").split()), when, words, files]
    )
    return hashlib.sha256(norm.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def work_out(msg: InboundMessage) -> tuple[str, str]:
    """(undated, dated) content signatures of the message as it is now: what ``signature``
    gives without and with its Date, the text folded once for both (most of the cost)."""
    files = sorted((a.filename, a.size) for a in msg.attachments)
    head = "\x00".join(
        [(msg.sender_address or "").strip().lower(), " ".join((msg.subject[:998] or "").split())]
    )
    words = " ".join(f"{msg.text or ''} {msg.quoted_text or ''}".split())
    tail = "\x00".join([words, "\x01".join(f"{n}:{size}" for n, size in files)])
    when = ""
    if msg.sent_at is not None:
        date = msg.sent_at
        utc = (date if date.tzinfo else date.replace(tzinfo=UTC)).astimezone(UTC)
        when = utc.replace(microsecond=0).isoformat()
    return _digest(f"{head}\x00\x00{tail}"), _digest(f"{head}\x00{when}\x00{tail}")


def _digest(norm: str) -> str:
    return hashlib.sha256(norm.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def content_signature(msg: InboundMessage, *, dated: bool = True) -> str:
    """The message's signature, with its Date or without; read from ``msg.signatures`` when
    the parser process worked it out already."""
    sigs = msg.signatures
    if sigs is None:
        sigs = work_out(msg)
    return sigs[1] if dated else sigs[0]


def reused_key(msg: InboundMessage) -> str:
    """The dedupe key of a message whose Message-ID another, different message already has."""
    return f"{msg.dedupe_key}#sig:{content_signature(msg)}"
