"""Raw RFC 5322 bytes -> :class:`InboundMessage`.

Long because: one MIME walker with its charset repairs, header decoding and
bounce/auto-reply detection, which share their small helpers and read best together.

The parser is built for real-world mail, which is often broken: it never raises anything but
:class:`ParseError`, walks MIME trees of any depth with an explicit stack (no recursion), repairs
mislabelled Russian charsets (cp1251 / koi8-r sent as us-ascii or iso-8859-1) and raw 8-bit
headers, and detects auto-replies, mailing lists and bounces.

It splits MIME itself instead of using :mod:`email.feedparser` (which recurses once per nesting
level and is slow); the stdlib still does the fiddly bits: parameters and RFC 2231 values
(compat32 :class:`email.message.Message`), addresses and dates (:mod:`email.utils`).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from supportdesk.channels.base import InboundMessage, ParseError
from supportdesk.channels.email.charsets import decode_bytes
from supportdesk.channels.email.headers import (
    Headers,
    _addresses,
    _ascii,
    _clean_header,
    _date,
    _get,
    _get_all,
    _msgid,
    _msgid_list,
    _single_address,
    _split_head,
    _text,
    decode_header_value,
)
from supportdesk.channels.email.mime import MAX_DEPTH, MAX_PARTS, _choose_body, _Walk, _walk
from supportdesk.channels.email.quotes import split_quoted

__all__ = [
    "MAX_DEPTH",
    "MAX_PARTS",
    "decode_bytes",
    "decode_header_value",
    "parse_email",
]


# --------------------------------------------------------------------------------------------
# Auto-replies and bounces
# --------------------------------------------------------------------------------------------

_DAEMON_RE = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)@", re.IGNORECASE)
_SMTP_ERROR_RE = re.compile(r"^(?:[^\n]{0,120}?:\s+|\s*)([45]\d\d[ -][^\n]{3,200})$")


def _auto_reason(headers: Headers, sender: str, walk: _Walk) -> tuple[str, bool]:
    """(reason, is_bounce)."""
    if walk.report_type == "delivery-status" or walk.delivery_status:
        return "bounce", True
    if _DAEMON_RE.match(sender):
        return "bounce", True
    auto = _ascii(_get(headers, "auto-submitted")).strip()
    if auto and auto.split(";", 1)[0].strip().lower() != "no":
        return f"Auto-Submitted: {auto}", False
    precedence = _ascii(_get(headers, "precedence")).strip().lower()
    if precedence in ("bulk", "list", "junk", "auto_reply", "auto-reply"):
        return f"Precedence: {precedence}", False
    for name, label in (("x-autoreply", "X-Autoreply"), ("x-autorespond", "X-Autorespond")):
        if _get(headers, name) is not None:
            return f"{label}: {_ascii(_get(headers, name)).strip()}".rstrip(": "), False
    if _get(headers, "list-id") is not None:
        return "mailing list (List-Id)", False
    if _get(headers, "list-unsubscribe") is not None:
        return "mailing list (List-Unsubscribe)", False
    return_path = _get(headers, "return-path")
    if return_path is not None and return_path.strip() in (b"<>", b"< >", b""):
        return "Return-Path: <>", False
    if walk.report_type:
        return f"report: {walk.report_type}", False
    return "", False


def _bounce_details(headers: Headers, walk: _Walk, body: str) -> tuple[list[str], str]:
    ids: list[str] = []
    for inner in walk.returned_headers:
        mid = _msgid(_get(inner, "message-id"))
        if mid and mid not in ids:
            ids.append(mid)
    if not ids:
        for mid in _msgid_list(_get_all(headers, "in-reply-to") + _get_all(headers, "references")):
            if mid not in ids:
                ids.append(mid)
    if not ids:
        for m in re.finditer(r"(?im)^\s*Message-ID:\s*<([^<>\s]+)>", body):
            if m.group(1) not in ids:
                ids.append(m.group(1))
    error = ""
    for status_blob in walk.delivery_status:
        fields: dict[str, str] = {}
        for fh, value in _split_status_fields(status_blob):
            fields.setdefault(fh, _clean_header(value.decode("utf-8", "replace")))
        status = fields.get("status", "")
        diag = fields.get("diagnostic-code", "")
        action = fields.get("action", "")
        bits = [b for b in (status, diag) if b]
        if not bits and action:
            bits = [action]
        if bits:
            error = "; ".join(bits)
            break
    if not error:
        for line in body.split("\n"):
            smtp = _SMTP_ERROR_RE.match(line)
            if smtp:
                error = smtp.group(1).strip()
                break
    return ids, error[:300]


def _split_status_fields(blob: bytes) -> list[tuple[str, bytes]]:
    """Header-like fields from all blocks of a message/delivery-status body."""
    fields: list[tuple[str, bytes]] = []
    for block in re.split(rb"\r?\n[ \t]*\r?\n", blob):
        headers, _ = _split_head(block + b"\n\n")
        fields.extend(headers)
    return fields


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def parse_email(raw: bytes) -> InboundMessage:
    """Parse one raw RFC 5322 message into an :class:`InboundMessage` (``kind="email"``).

    Raises :class:`ParseError` with a one-sentence reason when the bytes cannot be understood
    (empty input, no sender address at all); never any other exception.
    """
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise ParseError("the raw message must be bytes.")
    raw = bytes(raw)
    if not raw.strip():
        raise ParseError("the message is empty.")
    try:
        return _parse(raw)
    except ParseError:
        raise
    except RecursionError:
        raise ParseError("the message is nested too deeply to read.") from None
    except Exception as exc:  # noqa: BLE001 - the contract is ParseError only
        detail = " ".join(str(exc).split())[:200]
        raise ParseError(
            f"the message could not be parsed ({type(exc).__name__}: {detail})."
        ) from exc


# Each message's cost is bounded whatever a sender puts in it (a note says what was cut):
MAX_RECIPIENTS = 200  # per To or Cc header
MAX_ADDRESS_HEADER = 32 * 1024  # bytes of one To/Cc header that are read
MAX_SUBJECT = 1000  # characters
MAX_REFERENCES = 100


def _bounded_addresses(headers: Any, name: str, hints: list[str], notes: list[str]) -> list[str]:
    value = _get(headers, name)
    cut = False
    if value is not None and len(value) > MAX_ADDRESS_HEADER:
        end = value.rfind(b",", 0, MAX_ADDRESS_HEADER)
        value = value[: end if end > 0 else MAX_ADDRESS_HEADER]
        cut = True
    found = [a.lower() for _, a in _addresses(value, hints)]
    if len(found) > MAX_RECIPIENTS:
        found = found[:MAX_RECIPIENTS]
        cut = True
    if cut:
        notes.append(f"the {name.capitalize()} header was cut to its first {len(found)} addresses")
    return found


def _parse(raw: bytes) -> InboundMessage:
    # Some exporters leave blank lines or a byte order mark before the first header.
    start = raw.lstrip(b"\r\n")
    if start.startswith(b"\xef\xbb\xbf"):
        start = start[3:]
    headers, body = _split_head(start)
    if not headers:
        raise ParseError("the message has no header fields.")
    top_ct = _get(headers, "content-type")
    hints: list[str] = []
    if top_ct is not None:
        m = re.search(rb"charset\s*=\s*\"?([A-Za-z0-9_.:+-]+)", top_ct, re.IGNORECASE)
        if m:
            hints.append(m.group(1).decode("ascii"))
    walk = _walk(headers, body, hints)
    # Raw 8-bit headers are most often in the charset the body declares.
    for cs in walk.charsets:
        if cs not in hints:
            hints.append(cs)

    from_name, from_addr = _single_address(_get(headers, "from"), hints)
    if not from_addr:
        for fallback in ("sender", "return-path", "reply-to"):
            from_name2, from_addr = _single_address(_get(headers, fallback), hints)
            if from_addr:
                from_name = from_name or from_name2
                break
    if not from_addr:
        raise ParseError("no sender address")

    text, html = _choose_body(walk)
    new_text, quoted = split_quoted(text)

    mid = _msgid(_get(headers, "message-id")).strip()
    external_id = mid or "sha256:" + hashlib.sha256(raw).hexdigest()

    auto_reason, is_bounce = _auto_reason(headers, from_addr, walk)
    bounce_of: list[str] = []
    bounce_error = ""
    if is_bounce:
        bounce_of, bounce_error = _bounce_details(headers, walk, text)

    notes = list(walk.notes)
    to_addresses = _bounded_addresses(headers, "to", hints, notes)
    cc_addresses = _bounded_addresses(headers, "cc", hints, notes)
    subject = _text(headers, "subject", hints)
    if len(subject) > MAX_SUBJECT:
        subject = subject[:MAX_SUBJECT]
        notes.append(f"the subject was cut to its first {MAX_SUBJECT} characters")
    references = _msgid_list(_get_all(headers, "references"))
    if len(references) > MAX_REFERENCES:  # the newest ones matter for threading
        references = references[-MAX_REFERENCES:]
        notes.append(f"only the last {MAX_REFERENCES} References were kept")
    extra: dict[str, object] = {}
    if notes:
        extra["parse_notes"] = notes

    return InboundMessage(
        kind="email",
        external_id=external_id,
        sender_address=from_addr.lower(),
        sender_name=from_name,
        subject=subject,
        text=new_text,
        quoted_text=quoted,
        html=html,
        sent_at=_date(_get(headers, "date")),
        in_reply_to=_msgid_list(_get_all(headers, "in-reply-to")),
        references=references,
        to_addresses=to_addresses,
        cc_addresses=cc_addresses,
        attachments=walk.attachments,
        auto_reason=auto_reason,
        bounce_of=bounce_of,
        bounce_error=bounce_error,
        raw=raw,
        extra=extra,
    )
