"""Builders for test data: raw e-mails, normalized messages, and quick ingest."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from supportdesk.channels.base import Attachment, InboundMessage

_seq = itertools.count(1)


def raw_email(
    *,
    frm: str = "Ivan Petrov <ivan@example.ru>",
    to: str = "support@acme.test",
    subject: str = "Printer does not work",
    body: str = "Hello, my printer is broken.",
    msgid: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    date: datetime | None = None,
    headers: dict[str, str] | None = None,
    attachments: list[tuple[str, bytes, str]] | None = None,
) -> bytes:
    m = EmailMessage()
    m["From"] = frm
    m["To"] = to
    m["Subject"] = subject
    m["Date"] = format_datetime(date or datetime(2026, 11, 20, 10, 0, tzinfo=UTC))
    m["Message-ID"] = f"<{msgid or f'm{next(_seq)}@example.ru'}>"
    if in_reply_to:
        m["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        m["References"] = references
    for k, v in (headers or {}).items():
        m[k] = v
    m.set_content(body)
    for name, data, ctype in attachments or []:
        maintype, _, subtype = ctype.partition("/")
        m.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return bytes(m)


def inbound_email(**kw: Any) -> InboundMessage:
    """A normalized e-mail without going through the parser."""
    seq = next(_seq)
    return InboundMessage(
        kind="email",
        external_id=kw.pop("external_id", f"e{seq}@example.ru"),
        sender_address=kw.pop("sender_address", "ivan@example.ru"),
        sender_name=kw.pop("sender_name", "Ivan Petrov"),
        subject=kw.pop("subject", "Printer does not work"),
        text=kw.pop("text", "Hello, my printer is broken."),
        sent_at=kw.pop("sent_at", datetime(2026, 11, 20, 10, 0, tzinfo=UTC)),
        to_addresses=kw.pop("to_addresses", ["support@acme.test"]),
        channel=kw.pop("channel", "support"),
        **kw,
    )


def inbound_telegram(
    chat_id: int = 1001, text: str = "Привет, не работает бот", **kw: Any
) -> InboundMessage:
    mid = kw.pop("message_id", next(_seq))
    extra = {
        "chat_id": chat_id,
        "message_id": mid,
        "chat_type": "private",
        "username": kw.pop("username", "ivan"),
    }
    extra.update(kw.pop("extra", {}))
    return InboundMessage(
        kind="telegram",
        external_id=f"tg:{chat_id}:{mid}",
        sender_address=str(kw.pop("user_id", chat_id)),
        sender_name=kw.pop("sender_name", "Иван Петров"),
        text=text,
        sent_at=kw.pop("sent_at", datetime(2026, 11, 20, 10, 0, tzinfo=UTC)),
        channel=kw.pop("channel", "telegram"),
        conversation=str(chat_id),
        extra=extra,
        attachments=kw.pop("attachments", []),
        **kw,
    )


def ingest(desk: Any, msg: InboundMessage, **kw: Any) -> Any:
    """Ingest one message in its own transaction; returns the IngestResult."""
    from supportdesk.inbound.ingest import ingest as _ingest

    with desk.db.write() as s:
        return _ingest(s, desk, msg, **kw)


__all__ = ["Attachment", "inbound_email", "inbound_telegram", "ingest", "raw_email"]


def claim(desk: Any, outbox_id: int, holder: str = "tests") -> int:
    """Claim one outbox row as the runner would (under a lease epoch); returns the epoch to
    pass to ``mark_sent``/``mark_failed``."""
    from supportdesk.runner import state
    from supportdesk.store.models import Outbox

    epoch = state.acquire_lease(desk, holder=holder)
    assert epoch, "another runner holds the lease"
    with desk.db.write() as s:
        row = s.get(Outbox, outbox_id)
        assert row is not None
        row.state, row.claim_epoch = "sending", epoch
        row.attempts += 1
        s.add(row)
    return epoch
