"""Headers of real-world mail: raw 8-bit and encoded words decoded, the head split from the body
without the stdlib's recursion, parameters, addresses, Message-IDs and dates."""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email import utils as email_utils
from email.message import Message
from email.policy import compat32

from supportdesk.channels.email.charsets import decode_bytes

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


# A Content-Type or Content-Disposition simple enough to read without the stdlib (most are):
# plain tokens and quoted strings without escapes, semicolons or angle brackets, no RFC 2231
# ("name*="). What it gives is what compat32's get_param/get_filename give for such a value.
# Possessive quantifiers: linear on any input.
_TOKEN = r"[A-Za-z0-9!#$%&'*+.^_`|~-]++"
_PNAME = r"[A-Za-z0-9_.-]++"
_PVALUE = r"(?:\"[^\"\\;<>\x00-\x1f\x7f]*+\"|[^\s;\"\\<>\x00-\x1f\x7f]*+)"
_FAST_VALUE_RE = re.compile(
    rf"({_TOKEN}(?:/{_TOKEN})?)((?:\s*+;\s*+{_PNAME}\s*+=\s*+{_PVALUE})*+)\s*+;?"
)
_FAST_PARAM_RE = re.compile(rf";\s*+({_PNAME})\s*+=\s*+({_PVALUE})")
_FAST_MAX = 2000  # longer values go the stdlib's way


def _fast_params(value: bytes | None) -> tuple[str, dict[str, str]] | None:
    """(main value lowercased, {name: unquoted value}) of a simple header; None: not simple."""
    if value is None:
        return "", {}
    if len(value) > _FAST_MAX or not value.isascii():
        return None
    m = _FAST_VALUE_RE.fullmatch(value.decode("ascii").strip())
    if m is None:
        return None
    main = m.group(1).lower()
    params: dict[str, str] = {main: ""}  # the stdlib finds the main value by name too
    for pm in _FAST_PARAM_RE.finditer(m.group(2)):
        v = pm.group(2)
        if len(v) > 1 and v[0] == '"':
            v = v[1:-1]
        params.setdefault(pm.group(1).lower(), v)
    return main, params


class _Params:
    """Content-Type / Content-Disposition of one part: simple ones read here, the rest via a
    compat32 ``Message``."""

    __slots__ = ("ctype", "disposition", "msg", "fast")
    msg: Message | None
    fast: tuple[dict[str, str], dict[str, str] | None] | None

    def __init__(self, headers: Headers, default_type: str, hints: Iterable[str]) -> None:
        ct = _get(headers, "content-type")
        cd = _get(headers, "content-disposition")
        fct = _fast_params(ct)
        fcd = _fast_params(cd) if fct is not None else None
        if fct is not None and fcd is not None:
            self.msg = None
            self.fast = (fct[1], fcd[1] if cd is not None else None)
            self.ctype = fct[0] if ct is not None else default_type
            if "/" not in self.ctype or " " in self.ctype:
                self.ctype = "text/plain"
            self.disposition = fcd[0]
            return
        self.fast = None
        msg = Message(policy=compat32)
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
        if self.fast is not None:
            return self.fast[0].get(name, "").strip()
        try:
            return self._param(name)
        except Exception:  # noqa: BLE001 - a broken parameter is just absent
            return ""

    def _param(self, name: str) -> str:
        assert self.msg is not None
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
        found: object
        if self.fast is not None:
            ctp, cdp = self.fast
            found = (cdp or {}).get("filename")
            if found is None:
                found = ctp.get("name")
            found = found.strip() if found is not None else None
        else:
            assert self.msg is not None
            found = self.msg.get_filename()
        if found is None and self.msg is not None:
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
