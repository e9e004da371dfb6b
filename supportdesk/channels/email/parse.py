"""Raw RFC 5322 bytes -> :class:`InboundMessage`.

The parser is built for real-world mail, which is often broken: it never raises anything but
:class:`ParseError`, walks MIME trees of any depth with an explicit stack (no recursion), repairs
mislabelled Russian charsets (cp1251 / koi8-r sent as us-ascii or iso-8859-1) and raw 8-bit
headers, and detects auto-replies, mailing lists and bounces.

It splits MIME itself instead of using :mod:`email.feedparser` (which recurses once per nesting
level and is slow); the stdlib still does the fiddly bits: parameters and RFC 2231 values
(compat32 :class:`email.message.Message`), addresses and dates (:mod:`email.utils`).
"""

from __future__ import annotations

import binascii
import codecs
import hashlib
import mimetypes
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import utils as email_utils
from email.message import Message
from email.policy import compat32

from supportdesk.channels.base import Attachment, InboundMessage, ParseError
from supportdesk.channels.email.quotes import split_quoted

__all__ = [
    "MAX_DEPTH",
    "MAX_PARTS",
    "decode_bytes",
    "decode_header_value",
    "parse_email",
]

MAX_DEPTH = 100
"""Multipart nesting deeper than this is not walked (a note goes to ``extra['parse_notes']``)."""
MAX_PARTS = 2000
"""At most this many MIME parts are looked at in one message."""

# --------------------------------------------------------------------------------------------
# Charsets
# --------------------------------------------------------------------------------------------

# Declared name (lower-cased) -> Python codecs to try in order. Supersets first: mail clients
# label cp949 text "ks_c_5601-1987", cp932 text "shift_jis", gb18030 text "gb2312" and so on.
_CHARSET_OVERRIDES: dict[str, tuple[str, ...]] = {
    "ks_c_5601-1987": ("cp949",),
    "ks_c_5601": ("cp949",),
    "ks_c_5601_1987": ("cp949",),
    "ksc5601": ("cp949",),
    "euc-kr": ("cp949",),
    "euc_kr": ("cp949",),
    "x-windows-949": ("cp949",),
    "shift_jis": ("cp932", "shift_jis_2004"),
    "shift-jis": ("cp932", "shift_jis_2004"),
    "sjis": ("cp932", "shift_jis_2004"),
    "x-sjis": ("cp932", "shift_jis_2004"),
    "windows-31j": ("cp932",),
    "iso-2022-jp": ("iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2", "iso2022_jp_3"),
    "iso-2022-jp-2": ("iso2022_jp_2", "iso2022_jp_3"),
    "euc-jp": ("euc_jp", "euc_jis_2004"),
    "gb2312": ("gb18030",),
    "gbk": ("gb18030",),
    "x-gbk": ("gb18030",),
    "cp936": ("gb18030",),
    "big5": ("big5hkscs",),
    "iso-8859-8-i": ("iso8859_8",),
    "iso-8859-6-i": ("iso8859_6",),
    "x-mac-cyrillic": ("mac_cyrillic",),
    "x-mac-roman": ("mac_roman",),
    "windows-874": ("cp874",),
    "tis-620": ("cp874",),
    "utf8": ("utf-8",),
    "unicode-1-1-utf-7": ("utf-7",),
    "x-user-defined": (),
    "unknown-8bit": (),
    "x-unknown": (),
    "unknown": (),
    "default": (),
    "none": (),
}

# Labels that are very often wrong in Russian mail: decode, then check for mojibake.
_LATIN_LIKE = frozenset({"ascii", "latin-1", "iso8859-1", "cp1252", "iso8859-15"})
_STATEFUL_7BIT = ("iso2022", "utf-7", "hz")
_CYRILLIC_SINGLE = ("cp1251", "koi8-r", "koi8-u")

_codec_cache: dict[str, tuple[str, ...]] = {}


def _codecs_for(declared: str | None) -> tuple[str, ...]:
    """Python codec names for a declared charset ('' / unknown -> empty tuple)."""
    if not declared:
        return ()
    key = declared.strip().strip("\"'").lower()
    cached = _codec_cache.get(key)
    if cached is not None:
        return cached
    names = _CHARSET_OVERRIDES.get(key)
    if names is None:
        names = ()
        try:
            info = codecs.lookup(key)
            # Only text codecs: "base64", "rot13", "zlib"... are codecs too.
            if getattr(info, "_is_text_encoding", True):
                names = (info.name,)
        except (LookupError, ValueError, TypeError):
            names = ()
    if len(_codec_cache) < 512:
        _codec_cache[key] = names
    return names


_HIGH_LATIN_RE = re.compile("[\u00c0-\u00ff\u0080-\u009f]")
# A whole word of high characters (not glued to ASCII letters like the "çã" of "Formação").
_HIGH_RUN_RE = re.compile(
    "(?<![A-Za-z])[\u00c0-\u00ff\u0080-\u009f\u00a3\u00a8\u00b3\u00b8]{2,}(?![A-Za-z])"
)
_CYR_LOWER_UPPER_RE = re.compile("[а-яё][А-ЯЁ]")
_NOT_CYR_LETTER_RE = re.compile("[^а-яёА-ЯЁ]+")
_NOT_CYR_LOWER_RE = re.compile("[^а-яё]+")
_CYR_WORD_RE = re.compile("[а-яёА-ЯЁ]{2,}")
_MIXED_WORD_RE = re.compile("[a-zA-Z][а-яёА-ЯЁ]|[а-яёА-ЯЁ][a-zA-Z]")


def _looks_mojibake(text: str) -> bool:
    """True when latin-1/cp1252-decoded text looks like misread cp1251/koi8-r/utf-8."""
    high = _HIGH_LATIN_RE.findall(text)
    if not high:
        return False
    in_runs = sum(len(m) for m in _HIGH_RUN_RE.findall(text))
    # Western accents sit alone between ASCII letters ("café"; "Größe" is a rare pair, and the
    # Cyrillic guess rejects it later); Cyrillic read as latin-1 comes in whole words.
    return in_runs >= 0.6 * len(high) and in_runs >= 2


def _cyrillic_badness(text: str) -> float:
    """Lower is better: lower->upper flips inside words are rare in real Russian text."""
    text = text[:4000]
    cyrillic = _NOT_CYR_LETTER_RE.sub("", text)
    if not cyrillic:
        return 1e9
    flips = len(_CYR_LOWER_UPPER_RE.findall(text))
    lower = len(_NOT_CYR_LOWER_RE.sub("", cyrillic))
    return flips / len(cyrillic) + (0.5 if lower * 2 < len(cyrillic) else 0.0)


_LOW_BYTES = bytes(range(0x80))
_CYR_LETTER_BYTES = bytes([0xA3, 0xA8, 0xB3, 0xB8, *range(0xC0, 0x100)])
_NOT_CYR_LETTER_BYTES = bytes(b for b in range(0x100) if b not in _CYR_LETTER_BYTES)
_CYR_BYTES_RUN_RE = re.compile(rb"[\xa3\xa8\xb3\xb8\xc0-\xff]{2,}")


def _guess_cyrillic(data: bytes) -> str | None:
    """cp1251 or koi8-r when ``data`` looks like single-byte Russian, else None."""
    high = len(data.translate(None, _LOW_BYTES))
    if not high:
        return None
    letterish = len(data.translate(None, _NOT_CYR_LETTER_BYTES))
    if letterish < 0.8 * high:
        return None
    # Words: runs of high bytes (Cyrillic letters) dominate, unlike Western accents.
    runs = sum(len(m) for m in _CYR_BYTES_RUN_RE.findall(data))
    if runs < 0.6 * high:
        return None
    best: tuple[float, str] | None = None
    for name in ("cp1251", "koi8_r"):
        try:
            text = data[:4000].decode(name)
        except UnicodeDecodeError:
            continue
        # "Formação" read as cp1251 gives "Formaзгo": Cyrillic glued to Latin inside words.
        if len(_MIXED_WORD_RE.findall(text)) * 2 > len(_CYR_WORD_RE.findall(text)):
            continue
        score = _cyrillic_badness(text)
        if best is None or score < best[0]:
            best = (score, name)
    return best[1] if best else None


def _strict(data: bytes, name: str) -> str | None:
    """Decode strictly; for cp1251/koi8-r also consider that the other one was meant."""
    try:
        text = data.decode(name)
    except (UnicodeDecodeError, LookupError):
        return None
    if name in _CYRILLIC_SINGLE:
        # koi8-r mail labelled cp1251 (and the other way round) happens.
        other = _guess_cyrillic(data)
        if other and other.replace("_", "-") != name:
            alt = data.decode(other, "replace")
            if _cyrillic_badness(alt) + 0.05 < _cyrillic_badness(text):
                return alt
    return text


def _repair(data: bytes, hints: Iterable[str]) -> str:
    """Decode non-UTF-8 bytes whose label is missing or wrong."""
    for hint in hints:
        for name in _codecs_for(hint):
            if name in _LATIN_LIKE or name == "utf-8":
                continue
            text = _strict(data, name)
            if text is not None:
                return text
    cyr = _guess_cyrillic(data)
    if cyr:
        return data.decode(cyr, "replace")
    text = _cp1252(data)
    if len(data) >= 64 and _looks_mojibake(text):
        import charset_normalizer  # noqa: PLC0415 - imported lazily, only when needed

        best = charset_normalizer.from_bytes(data).best()
        if best is not None and best.encoding:
            try:
                return data.decode(best.encoding, "replace")
            except LookupError:
                pass
    return text


def _cp1252(data: bytes) -> str:
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def decode_bytes(data: bytes, declared: str | None = None, hints: Iterable[str] = ()) -> str:
    """Decode ``data`` labelled ``declared``; repair a missing, unknown or wrong label.

    ``hints`` are other charsets seen in the same message (tried before detection).
    Never raises.
    """
    if not data:
        return ""
    names = _codecs_for(declared)
    if data.isascii():
        if names and names[0].startswith(_STATEFUL_7BIT):
            return _decode_first(data, names)
        return data.decode("ascii")
    if names and names[0] not in _LATIN_LIKE:
        for name in names:
            text = _strict(data, name)
            if text is not None:
                return text
        # The declared charset failed: another charset, or just a few bad bytes?
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        text = _decode_first(data, names)
        if text.count("\ufffd") * 50 <= len(text):
            return text
        return _repair(data, hints)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if names and names[0] != "ascii":
        text = data.decode("iso8859-15") if names[0] == "iso8859-15" else _cp1252(data)
        if not _looks_mojibake(text):
            return text
    return _repair(data, hints)


def _decode_first(data: bytes, names: tuple[str, ...]) -> str:
    for name in names:
        try:
            return data.decode(name)
        except (UnicodeDecodeError, LookupError):
            continue
    try:
        return data.decode(names[0], "replace")
    except LookupError:
        return _cp1252(data)


# --------------------------------------------------------------------------------------------
# Headers
# --------------------------------------------------------------------------------------------

_ENCODED_WORD_RE = re.compile(rb"=\?([^?\s]{1,75})\?([bBqQ])\?([^?\s]*)\?=")
_WS_ONLY_RE = re.compile(rb"^[ \t\r\n]*$")


def _b64decode(data: bytes) -> bytes:
    try:
        return binascii.a2b_base64(data)
    except (binascii.Error, ValueError):
        cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
        rem = len(cleaned) % 4
        if rem == 1:
            cleaned = cleaned[:-1]
        elif rem:
            cleaned += b"=" * (4 - rem)
        try:
            return binascii.a2b_base64(cleaned)
        except (binascii.Error, ValueError):
            return b""


def decode_header_value(value: bytes | str, hints: Iterable[str] = ()) -> str:
    """Decode one header value: raw 8-bit bytes and RFC 2047 encoded words -> ``str``.

    Adjacent encoded words in the same charset are joined before decoding, so a multi-byte
    character split across two words comes out right. Never raises.
    """
    raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    if b"=?" not in raw:
        return _decode_raw_header(raw, hints)
    out: list[str] = []
    pos = 0
    pending_cs: bytes | None = None
    pending: list[bytes] = []

    def flush() -> None:
        nonlocal pending_cs
        if pending_cs is not None:
            cs = pending_cs.split(b"*", 1)[0].decode("ascii", "replace")
            out.append(decode_bytes(b"".join(pending), cs, hints))
            pending.clear()
            pending_cs = None

    for m in _ENCODED_WORD_RE.finditer(raw):
        between = raw[pos : m.start()]
        if between and not (pending_cs is not None and _WS_ONLY_RE.match(between)):
            flush()
            out.append(_decode_raw_header(between, hints))
        charset, enc, payload = m.group(1), m.group(2), m.group(3)
        if enc in b"bB":
            chunk = _b64decode(payload)
        else:
            chunk = binascii.a2b_qp(payload, header=True)
        if pending_cs is not None and pending_cs.lower() != charset.lower():
            flush()
        pending_cs = charset
        pending.append(chunk)
        pos = m.end()
    flush()
    if pos < len(raw):
        out.append(_decode_raw_header(raw[pos:], hints))
    return "".join(out)


def _decode_raw_header(raw: bytes, hints: Iterable[str]) -> str:
    if raw.isascii():
        return raw.decode("ascii")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return decode_bytes(raw, None, hints)


def _clean_header(text: str) -> str:
    """Unfold and tidy a decoded header for display."""
    if "\n" in text or "\r" in text or "\t" in text:
        text = re.sub(r"[\r\n]+[ \t]*", " ", text).replace("\t", " ")
    return text.replace("\x00", "").strip()


_HEADER_LINE_RE = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]*:[ \t]?(.*)$", re.DOTALL)
_OBS_FROM_RE = re.compile(rb"From[ \t]*:")  # "From  : x" is a header (RFC 2822 obs-syntax)
_BLANK_LINE_RE = re.compile(rb"\r?\n[ \t]*\r?\n")


Headers = list[tuple[str, bytes]]


def _split_head(blob: bytes) -> tuple[Headers, bytes]:
    """Split a message or part into ``[(lower_name, raw_value)]`` and the body bytes."""
    if b"\n" not in blob[:4096] and b"\r" in blob[:4096]:
        blob = blob.replace(b"\r", b"\n")  # old Mac line endings
    if blob.startswith((b"\r\n", b"\n")):
        return [], blob[2:] if blob.startswith(b"\r\n") else blob[1:]
    m = _BLANK_LINE_RE.search(blob)
    # A "blank" line containing only spaces is still a separator for the body, but a line with
    # only a tab inside a folded header (seen in the wild) is a continuation: check the match.
    while m is not None and m.group(0).strip(b"\r\n") and _continues(blob, m):
        m = _BLANK_LINE_RE.search(blob, m.start() + 1)
    if m is None:
        head, body, strict = blob, b"", True
    else:
        head, body, strict = blob[: m.start()], blob[m.end() :], False
    headers: Headers = []
    lines = head.split(b"\n")
    if lines and lines[0].startswith(b"From ") and not _OBS_FROM_RE.match(lines[0]):
        lines = lines[1:]  # mbox envelope line
    for idx, line in enumerate(lines):
        line = line.rstrip(b"\r")
        if line[:1] in (b" ", b"\t"):
            if headers:
                name, value = headers[-1]
                headers[-1] = (name, value + b" " + line.strip(b" \t"))
            continue
        hm = _HEADER_LINE_RE.match(line)
        if hm is not None:
            headers.append((hm.group(1).decode("ascii").lower(), hm.group(2).rstrip(b" \t")))
        elif strict:
            # No blank line at all: the first non-header line starts the body.
            rest = b"\n".join(lines[idx:])
            return headers, rest
        elif headers and line.strip():
            # A broken fold inside the header block: keep it with the previous header.
            name, value = headers[-1]
            headers[-1] = (name, value + b" " + line.strip())
    return headers, body


def _continues(blob: bytes, m: re.Match[bytes]) -> bool:
    """The whitespace-only line of this match is followed by a header continuation."""
    nxt = blob[m.end() : m.end() + 1]
    return nxt in (b" ", b"\t")


def _get(headers: Headers, name: str) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _get_all(headers: Headers, name: str) -> list[bytes]:
    return [value for key, value in headers if key == name]


def _text(headers: Headers, name: str, hints: Iterable[str] = ()) -> str:
    value = _get(headers, name)
    if value is None:
        return ""
    return _clean_header(decode_header_value(value, hints))


def _ascii(value: bytes | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace").replace("\x00", "")


class _Params:
    """Content-Type / Content-Disposition of one part, via a compat32 ``Message``."""

    __slots__ = ("ctype", "disposition", "msg")

    def __init__(self, headers: Headers, default_type: str, hints: Iterable[str]) -> None:
        msg = Message(policy=compat32)
        ct = _get(headers, "content-type")
        cd = _get(headers, "content-disposition")
        if ct is not None:
            msg["Content-Type"] = _decode_raw_header(ct, hints).replace("\x00", "")
        if cd is not None:
            msg["Content-Disposition"] = _decode_raw_header(cd, hints).replace("\x00", "")
        msg.set_default_type(default_type)
        self.msg = msg
        self.ctype = msg.get_content_type() if ct is not None else default_type
        if "/" not in self.ctype or " " in self.ctype:
            self.ctype = "text/plain"
        disp = msg.get_content_disposition() if cd is not None else None
        self.disposition = disp.strip() if disp else ""

    def param(self, name: str) -> str:
        try:
            return self._param(name)
        except Exception:  # noqa: BLE001 - a broken parameter is just absent
            return ""

    def _param(self, name: str) -> str:
        value = self.msg.get_param(name)
        if value is None:
            return ""
        if isinstance(value, tuple):
            value = email_utils.collapse_rfc2231_value(value)
        return str(value).strip()

    def filename(self, hints: Iterable[str]) -> str:
        try:
            return self._filename(hints)
        except Exception:  # noqa: BLE001 - a broken parameter is just absent
            return ""

    def _filename(self, hints: Iterable[str]) -> str:
        found = self.msg.get_filename()
        if found is None:
            param = self.msg.get_param("name")
            if isinstance(param, tuple):
                found = email_utils.collapse_rfc2231_value(param)
            elif param is not None:
                found = str(param)
        if not found:
            return ""
        name = str(found)
        if "=?" in name:
            name = decode_header_value(name.encode("utf-8", "surrogateescape"), hints)
        # Undo surrogateescape leftovers from broken RFC 2231 values.
        name = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        return name.replace("\x00", "").replace("\r", "").replace("\n", "").strip()


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
# Addresses, ids, dates
# --------------------------------------------------------------------------------------------

# Starts only at a token boundary and never backtracks: linear even on a megabyte of junk.
_ADDR_SPEC_RE = re.compile(
    r"(?<![^\s<>()\[\]@,;:\"'])[^\s<>()\[\]@,;:\"']++@[^\s<>()\[\]@,;:\"']++"
)
_VALID_ADDR_RE = re.compile(r"^[^\s<>()\[\]@,;:\"]+@[^\s<>()\[\]@,;:\"]+$")
_ATOM = r"[^\s<>()\[\]@,;:\"\\]+"
_SIMPLE_ADDR_RE = re.compile(
    rf"^\s*(?:(?:\"([^\"\\]*)\"|([^\"<>,;:@\\()]*?))\s*<({_ATOM}@{_ATOM})>|({_ATOM}@{_ATOM}))\s*$"
)
_MSGID_RE = re.compile(rb"<([^<>\s]+)>")
_BARE_ID_RE = re.compile(rb"(?<![<\w.!#$%&'*+/=?^`{|}~-])([\w.!#$%&'*+/=?^`{|}~-]++@[\w.-]++)(?!>)")


def _addresses(value: bytes | None, hints: Iterable[str]) -> list[tuple[str, str]]:
    """``[(decoded_name, address)]`` from an address header; junk is skipped."""
    if not value:
        return []
    text = _clean_header(_decode_raw_header(value, hints))
    simple = _SIMPLE_ADDR_RE.match(text)
    if simple is not None:  # fast path for "Name <a@b>", "<a@b>" and "a@b"
        name = simple.group(1) if simple.group(1) is not None else simple.group(2) or ""
        addr = simple.group(3) or simple.group(4)
        if "=?" in name:
            name = decode_header_value(name, hints)
        return [(_clean_header(name).strip("\"' "), addr)]
    result: list[tuple[str, str]] = []
    try:
        pairs = email_utils.getaddresses([text])
    except Exception:  # noqa: BLE001 - getaddresses has raised on odd input in some versions
        pairs = []
    for name, addr in pairs:
        addr = addr.strip().strip("<>").strip()
        if not _VALID_ADDR_RE.match(addr):
            continue
        result.append((_clean_header(decode_header_value(name, hints)).strip("\"' "), addr))
    if not result:
        # getaddresses gave up on the value: take the addr-specs that are there.
        for found in _ADDR_SPEC_RE.finditer(text):
            result.append(("", found.group(0).strip(".")))
    return result


def _single_address(value: bytes | None, hints: Iterable[str]) -> tuple[str, str]:
    pairs = _addresses(value, hints)
    if pairs:
        return pairs[0]
    return "", ""


def _msgid(value: bytes | None) -> str:
    if value is None:
        return ""
    m = _MSGID_RE.search(value)
    token = m.group(1) if m else (value.split() or [b""])[0].strip(b"<>")
    return token.decode("utf-8", "replace").replace("\x00", "")


def _msgid_list(values: list[bytes]) -> list[str]:
    ids: list[str] = []
    seen: set[str] = set()
    for value in values:
        # Re-join ids broken by a bad fold ("<invalid.   \n something@x>") is not attempted:
        # such ids are junk and are dropped.
        candidates = _MSGID_RE.findall(value)
        if not candidates:
            candidates = _BARE_ID_RE.findall(value)
        for raw_id in candidates:
            if b"@" not in raw_id and len(raw_id) < 8:
                continue
            text = raw_id.decode("utf-8", "replace")
            if text not in seen:
                seen.add(text)
                ids.append(text)
    return ids


def _date(value: bytes | None) -> datetime | None:
    if not value:
        return None
    text = value.decode("ascii", "replace").strip()
    try:
        parsed = email_utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, OverflowError, IndexError, AttributeError):
        return None
    if parsed is None:
        return None  # type: ignore[unreachable]
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


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

    extra: dict[str, object] = {}
    if walk.notes:
        extra["parse_notes"] = list(walk.notes)

    return InboundMessage(
        kind="email",
        external_id=external_id,
        sender_address=from_addr.lower(),
        sender_name=from_name,
        subject=_text(headers, "subject", hints),
        text=new_text,
        quoted_text=quoted,
        html=html,
        sent_at=_date(_get(headers, "date")),
        in_reply_to=_msgid_list(_get_all(headers, "in-reply-to")),
        references=_msgid_list(_get_all(headers, "references")),
        to_addresses=[a.lower() for _, a in _addresses(_get(headers, "to"), hints)],
        cc_addresses=[a.lower() for _, a in _addresses(_get(headers, "cc"), hints)],
        attachments=walk.attachments,
        auto_reason=auto_reason,
        bounce_of=bounce_of,
        bounce_error=bounce_error,
        raw=raw,
        extra=extra,
    )
