"""Property tests: no input makes parse_email raise anything but ParseError."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supportdesk.channels.base import InboundMessage, ParseError
from supportdesk.channels.email.parse import decode_bytes, parse_email
from supportdesk.channels.email.quotes import split_quoted

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(raw: bytes) -> None:
    try:
        msg = parse_email(raw)
    except ParseError as exc:
        assert str(exc)
        return
    assert isinstance(msg, InboundMessage)
    assert msg.external_id
    assert "\x00" not in msg.text and "\r" not in msg.text
    for att in msg.attachments:
        assert "\x00" not in att.filename


@SETTINGS
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(raw: bytes) -> None:
    _check(raw)


@SETTINGS
@given(st.binary(max_size=500))
def test_arbitrary_body_after_valid_headers(body: bytes) -> None:
    _check(b"From: a@b.example\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n" + body)


HEADER_NAMES = st.sampled_from(
    [
        "From",
        "To",
        "Cc",
        "Subject",
        "Date",
        "Message-ID",
        "In-Reply-To",
        "References",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Content-Disposition",
        "Sender",
        "Return-Path",
        "Auto-Submitted",
        "Precedence",
        "List-Id",
        "Content-ID",
        "X-Junk",
    ]
)
CTYPES = st.sampled_from(
    [
        "text/plain",
        "text/html",
        "multipart/mixed",
        "multipart/alternative",
        "multipart/related",
        "multipart/report; report-type=delivery-status",
        "multipart/digest",
        "message/rfc822",
        "message/delivery-status",
        "text/rfc822-headers",
        "image/png",
        "application/octet-stream",
        "garbage",
        "",
        "multipart/",
    ]
)
CHARSETS = st.sampled_from(
    ["utf-8", "koi8-r", "windows-1251", "us-ascii", "iso-2022-jp", "bogus", "utf-7", "base64", ""]
)
CTES = st.sampled_from(
    ["7bit", "8bit", "base64", "quoted-printable", "x-uuencode", "binary", "junk", ""]
)
VALUE_BYTES = st.one_of(
    st.binary(max_size=60),
    st.text(max_size=40).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.sampled_from(
        [
            b"=?utf-8?B?0J/RgNC40LLQtdGC?=",
            b"=?koi8-r?Q?=F0=D2=C9?=",
            b"=?x?Q?bad",
            b"<>",
            b"<a@b>",
            b'"\xff" <x@y>',
            b"attachment; filename*=utf-8''%D0%00%ZZ",
            b"attachment; filename*0*=x''a; filename*1=b",
            b"Mon, 99 Foo 99999 99:99",
        ]
    ),
)


@st.composite
def mime_trees(draw: st.DrawFn, depth: int = 0) -> bytes:
    """Structured but frequently broken MIME: real-looking headers, bad values, bad trees."""
    lines: list[bytes] = []
    for _ in range(draw(st.integers(0, 5))):
        value = draw(VALUE_BYTES).replace(b"\r", b"").replace(b"\n", b" ")
        lines.append(draw(HEADER_NAMES).encode() + b": " + value)
    ctype = draw(CTYPES)
    boundary = draw(st.sampled_from(["b", "b1", "", "a b", "--", "x" * 80]))
    charset = draw(CHARSETS)
    lines.append(f'Content-Type: {ctype}; charset="{charset}"; boundary="{boundary}"'.encode())
    lines.append(b"Content-Transfer-Encoding: " + draw(CTES).encode())
    head = b"\r\n".join(lines)
    if ctype.startswith("multipart/") and depth < 4:
        children = draw(st.lists(mime_trees(depth + 1), max_size=3))
        delim = b"--" + boundary.encode()
        body = b"preamble\r\n"
        for child in children:
            body += delim + b"\r\n" + child + b"\r\n"
        if draw(st.booleans()):
            body += delim + b"--\r\n"
    elif ctype == "message/rfc822" and depth < 4:
        body = draw(mime_trees(depth + 1))
    else:
        body = draw(st.binary(max_size=200))
    blob = head + b"\r\n\r\n" + body
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(blob)))
        blob = blob[:cut]
    return blob


@SETTINGS
@given(mime_trees())
def test_structured_broken_mime(raw: bytes) -> None:
    _check(raw)
    _check(b"From: someone@example.com\r\n" + raw)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.one_of(st.none(), CHARSETS))
def test_decode_bytes_total(data: bytes, label: str | None) -> None:
    assert isinstance(decode_bytes(data, label), str)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab >-:\nOnwrote@1пишет"), max_size=200))
def test_split_quoted_loses_nothing(body: str) -> None:
    text, quoted = split_quoted(body)
    assert text.split() + quoted.split() == body.split()
