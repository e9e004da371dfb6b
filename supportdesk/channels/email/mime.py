"""The MIME tree walked with an explicit stack (no recursion, bounded depth and parts): bodies
decoded, HTML turned into text, attachments named, the text body chosen."""

from __future__ import annotations

import binascii
import mimetypes
import re
from dataclasses import dataclass, field

from supportdesk.channels.base import Attachment
from supportdesk.channels.email.charsets import decode_bytes
from supportdesk.channels.email.headers import (
    Headers,
    _ascii,
    _b64decode,
    _get,
    _Params,
    _split_head,
    _text,
)

MAX_DEPTH = 100
"""Multipart nesting deeper than this is not walked (a note goes to ``extra['parse_notes']``)."""
MAX_PARTS = 2000
"""At most this many MIME parts are looked at in one message."""


# --------------------------------------------------------------------------------------------
# Bodies
# --------------------------------------------------------------------------------------------


def _decode_cte(body: bytes, cte: bytes | None) -> bytes:
    if not cte:
        return body
    kind = re.sub(rb"[^a-z0-9]", b"", cte.lower())
    if kind.startswith(b"base64"):
        return _b64decode(body)
    if kind.startswith(b"quotedprintable"):
        return binascii.a2b_qp(body)
    if kind in (b"xuuencode", b"uuencode", b"xuue", b"uue"):
        return _uudecode(body)
    return body


def _uudecode(body: bytes) -> bytes:
    out = bytearray()
    started = False
    for line in body.splitlines():
        if not started:
            started = line.startswith(b"begin ")
            continue
        if line.strip() in (b"end", b"`"):
            if line.strip() == b"end":
                break
            continue
        try:
            out += binascii.a2b_uu(line)
        except binascii.Error:
            if not line:
                continue
            nbytes = (((line[0] - 32) & 63) * 4 + 5) // 3
            try:
                out += binascii.a2b_uu(line[:nbytes])
            except binascii.Error:
                continue
    return bytes(out) if started else body


def _normalize_text(text: str) -> str:
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text


_TAG_RE = re.compile(r"<[^<>]*>")


def _drop_blocks(html: str) -> str:
    """Remove <script>, <style> and comments in linear time (for the fallback stripper)."""
    lower = html.lower()
    out: list[str] = []
    pos = 0
    while True:
        candidates = [
            (i, closer)
            for opener, closer in (("<script", "</script"), ("<style", "</style"), ("<!--", "-->"))
            if (i := lower.find(opener, pos)) >= 0
        ]
        if not candidates:
            out.append(html[pos:])
            return "".join(out)
        start, closer = min(candidates)
        out.append(html[pos:start])
        end = lower.find(closer, start)
        if end < 0:
            return "".join(out)
        close_end = lower.find(">", end)
        pos = len(html) if close_end < 0 else close_end + 1


def _strip_tags(html: str) -> str:
    import html as html_mod  # noqa: PLC0415

    return html_mod.unescape(_TAG_RE.sub(" ", _drop_blocks(html)))


def _html_to_text(html: str) -> str:
    """Readable text from HTML with inscriptis (which drops script/style and <head>)."""
    if not html.strip():
        return ""
    try:
        from inscriptis import get_text  # noqa: PLC0415 - lxml import is slow; only for HTML

        text = get_text(html)
    except Exception:  # lxml rejects some inputs
        text = ""
    if not text.strip():
        # lxml gives up on some documents (absurd nesting, odd encodings): strip tags instead.
        text = "\n".join(" ".join(line.split()) for line in _strip_tags(html).splitlines())
    text = _normalize_text(text)
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


# --------------------------------------------------------------------------------------------
# MIME walk
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Part:
    headers: Headers
    body: bytes
    depth: int
    alt_group: int  # id of the nearest multipart/alternative ancestor, -1 for none
    parent: str  # content type of the parent multipart ("" at the top)


@dataclass
class _Walk:
    texts: list[tuple[int, str]] = field(default_factory=list)  # (alt_group, text)
    htmls: list[tuple[int, str]] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    returned_headers: list[Headers] = field(default_factory=list)
    delivery_status: list[bytes] = field(default_factory=list)
    charsets: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    report_type: str = ""


def _split_multipart(body: bytes, boundary: str) -> list[bytes] | None:
    """Body parts between ``--boundary`` lines; None when the boundary never appears."""
    bb = boundary.encode("utf-8", "surrogateescape")
    pat = re.compile(rb"^--" + re.escape(bb) + rb"(--)?[ \t]*\r?$", re.MULTILINE)
    parts: list[bytes] = []
    start: int | None = None
    for m in pat.finditer(body):
        if start is not None:
            end = m.start()
            # The line break before a delimiter belongs to the delimiter.
            if body[end - 2 : end] == b"\r\n":
                end -= 2
            elif body[end - 1 : end] == b"\n":
                end -= 1
            parts.append(body[start:end])
        if m.group(1):
            start = None
            break
        nl = body.find(b"\n", m.end())
        start = len(body) if nl < 0 else nl + 1
    else:
        if start is None:
            return None
    if start is not None:
        parts.append(body[start:])  # no closing delimiter: the rest is the last part
    return parts


_EXT_FALLBACK = {
    "message/rfc822": ".eml",
    "message/delivery-status": ".txt",
    "text/rfc822-headers": ".txt",
    "message/rfc822-headers": ".txt",
    "text/plain": ".txt",
    "text/html": ".html",
    "text/calendar": ".ics",
    "image/jpeg": ".jpg",
}


def _generated_name(ctype: str, index: int) -> str:
    ext = _EXT_FALLBACK.get(ctype) or mimetypes.guess_extension(ctype, strict=False) or ".bin"
    stem = {
        "message/delivery-status": "delivery-status",
        "text/rfc822-headers": "headers",
        "message/rfc822-headers": "headers",
    }.get(ctype, f"part-{index}")
    return stem + ext


def _walk(top_headers: Headers, top_body: bytes, hints: list[str]) -> _Walk:
    walk = _Walk()
    stack: list[_Part] = [_Part(top_headers, top_body, 0, -1, "")]
    seen_parts = 0
    alt_ids = 0
    deep_noted = False
    while stack:
        part = stack.pop()
        seen_parts += 1
        default = "message/rfc822" if part.parent == "multipart/digest" else "text/plain"
        params = _Params(part.headers, default, hints)
        ctype = params.ctype
        charset = params.param("charset")
        if charset and charset not in walk.charsets:
            walk.charsets.append(charset)
        if ctype.startswith("multipart/"):
            if part.depth >= MAX_DEPTH:
                if not deep_noted:
                    walk.notes.append(f"parts nested deeper than {MAX_DEPTH} levels were skipped")
                    deep_noted = True
                continue
            boundary = params.param("boundary")
            children = _split_multipart(part.body, boundary) if boundary else None
            if children is not None:
                if ctype == "multipart/report" and not walk.report_type:
                    walk.report_type = params.param("report-type").lower() or "unknown"
                group = part.alt_group
                if ctype == "multipart/alternative":
                    alt_ids += 1
                    group = alt_ids
                room = MAX_PARTS - seen_parts - len(stack)
                if len(children) > room:
                    walk.notes.append(f"only the first {MAX_PARTS} MIME parts were read")
                    children = children[: max(room, 0)]
                for child in reversed(children):
                    headers, body = _split_head(child)
                    stack.append(_Part(headers, body, part.depth + 1, group, ctype))
                continue
            ctype = "text/plain"  # a multipart without usable boundary: show it as text
        _leaf(part, params, ctype, charset, walk, hints, seen_parts)
    return walk


def _leaf(
    part: _Part,
    params: _Params,
    ctype: str,
    charset: str,
    walk: _Walk,
    hints: list[str],
    index: int,
) -> None:
    data = _decode_cte(part.body, _get(part.headers, "content-transfer-encoding"))
    filename = params.filename(hints)
    disposition = params.disposition
    is_body_type = ctype in ("text/plain", "text/html")
    if is_body_type and not filename and disposition != "attachment":
        text = _normalize_text(decode_bytes(data, charset, hints))
        if ctype == "text/plain":
            walk.texts.append((part.alt_group, text))
        else:
            walk.htmls.append((part.alt_group, text))
        return
    if ctype in ("message/delivery-status", "message/global-delivery-status"):
        walk.delivery_status.append(data)
    content_id = _ascii(_get(part.headers, "content-id")).strip().strip("<>").strip() or None
    if ctype in ("message/rfc822", "message/global"):
        inner_headers, _ = _split_head(data)
        walk.returned_headers.append(inner_headers)
        if not filename:
            subject = _text(inner_headers, "subject", hints)
            filename = (subject[:150].strip() or "message") + ".eml"
    elif ctype in ("text/rfc822-headers", "message/rfc822-headers"):
        inner_headers, _ = _split_head(data)
        walk.returned_headers.append(inner_headers)
    if not filename:
        filename = _generated_name(ctype, index)
    inline = disposition == "inline" or (
        not disposition and ctype.startswith("image/") and part.parent == "multipart/related"
    )
    walk.attachments.append(
        Attachment(
            filename=filename,
            content_type=ctype,
            data=data,
            size=len(data),
            content_id=content_id,
            inline=inline,
        )
    )


def _choose_body(walk: _Walk) -> tuple[str, str | None]:
    """(text, html): all plain parts; HTML parts only where no plain alternative exists."""
    plain_groups = {group for group, text in walk.texts if group >= 0 and text.strip()}
    texts = [text for _, text in walk.texts]
    for group, html in walk.htmls:
        if group >= 0 and group in plain_groups:
            continue  # the plain alternative already carries this content
        texts.append(_html_to_text(html))
    body = "\n\n".join(t.strip("\n") for t in texts if t.strip())
    return body, (walk.htmls[0][1] if walk.htmls else None)
