"""Property tests one level above the parser (tests/channels/parse/test_property.py covers parse_email
alone): whatever bytes arrive, parse + ingest — the import/runner path, raw ledger and quarantine
included — never raises, and every message ends up stored or quarantined, exactly once."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import func, select

from supportdesk.channels.email.channel import parse_raw_email
from supportdesk.inbound.pipeline import Summary, store
from supportdesk.store.models import Message, Quarantine

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

CHARSETS = ["utf-8", "koi8-r", "windows-1251", "cp866", "iso-8859-5", "x-bogus", "", "utf-7",
            "utf-16", "gb2312", "us-ascii"]  # fmt: skip
TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]),
    max_size=60,
)
NASTY = st.sampled_from(
    ["\x1b]52;c;ZXZpbA==\x07", "\x1b[31m", "\x9b2J", "[bold]x[/bold]", "\x00", "\r", "\u202e",
     "../../etc/passwd", "=?utf-8?B?", "?=", "--", "\\", '"', ";", "<>", "\t"]
)  # fmt: skip


def _encoded_word(charset: str, enc: str, payload: str) -> str:
    return f"=?{charset}?{enc}?{payload}?="


HEADER_VALUE = st.one_of(
    TEXT,
    st.lists(st.one_of(TEXT, NASTY), max_size=6).map("".join),
    st.builds(
        _encoded_word,
        st.sampled_from(CHARSETS),
        st.sampled_from(["B", "Q", "b", "X"]),
        st.text(alphabet="ABCDEFGHabcdefgh0123456789+/=_%?-", max_size=30),
    ),
)
HEADER = st.tuples(
    st.sampled_from(
        [
            "From",
            "To",
            "Subject",
            "Message-ID",
            "In-Reply-To",
            "References",
            "Content-Type",
            "Content-Transfer-Encoding",
            "Content-Disposition",
            "Date",
            "Reply-To",
            "Auto-Submitted",
            "X-Junk",
        ]
    ),  # fmt: skip
    HEADER_VALUE,
)


def _leaf(ctype: str, charset: str, cte: str, filename: str | None, body: bytes) -> list[bytes]:
    head = f"Content-Type: {ctype}; charset={charset}"
    if filename is not None:
        head += f'; name="{filename}"'
    lines = [head.encode("utf-8", "surrogatepass"), f"Content-Transfer-Encoding: {cte}".encode()]
    if filename is not None:
        lines.append(
            f"Content-Disposition: attachment; filename*=utf-8''{filename}".encode(
                "utf-8", "surrogatepass"
            )
        )
    return [*lines, b"", body]


LEAF = st.builds(
    _leaf,
    st.sampled_from(
        [
            "text/plain",
            "text/html",
            "application/octet-stream",
            "image/png",
            "message/rfc822",
            "text/x-unknown",
            "",
            "multipart/mixed",
        ]
    ),  # fmt: skip
    st.sampled_from(CHARSETS),
    st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", "x-uuencode", "bogus"]),
    st.one_of(st.none(), TEXT, NASTY),
    st.binary(max_size=300),
)


def _multipart(boundary: str, parts: list[list[bytes]], close: bool) -> list[bytes]:
    out = [f'Content-Type: multipart/mixed; boundary="{boundary}"'.encode(), b""]
    for p in parts:
        out += [f"--{boundary}".encode(), *p]
    if close:
        out.append(f"--{boundary}--".encode())
    return out


BODY = st.recursive(
    LEAF,
    lambda children: st.builds(
        _multipart,
        st.sampled_from(["b", "", "x y", "--", "b" * 80]),
        st.lists(children, max_size=4),
        st.booleans(),
    ),
    max_leaves=12,
)


@st.composite
def broken_mails(draw: Any) -> bytes:
    headers = draw(st.lists(HEADER, max_size=8))
    if draw(st.integers(0, 4)):  # usually a sender, so most mails get past the parser
        headers.insert(0, ("From", draw(st.sampled_from(
            ["a@b.example", "Иван <ivan@example.ru>", "\x1b[31m <x@y.z>", "[b]x[/b] <q@r.s>",
             "<>", "@", "a@", ""]
        ))))  # fmt: skip
    lines = [f"{k}: {v}".encode("utf-8", "surrogatepass") for k, v in headers]
    lines += draw(BODY)
    sep = draw(st.sampled_from([b"\r\n", b"\n", b"\r"]))
    return sep.join(lines)


def _ingest_all(desk: Any, raws: list[bytes]) -> Summary:
    summary = Summary()
    store(
        desk,
        [parse_raw_email(raw, f"hostile:{i}") for i, raw in enumerate(raws)],
        channel="support",
        historical=False,
        summary=summary,
    )
    return summary


def _counts(desk: Any) -> tuple[int, int]:
    with desk.db.read() as s:
        msgs = s.exec(select(func.count()).select_from(Message)).one()
        quar = s.exec(select(func.count()).select_from(Quarantine)).one()
    return int(msgs), int(quar)


@SETTINGS
@given(st.lists(st.binary(max_size=1500), min_size=1, max_size=4))
def test_arbitrary_bytes_ingest_never_raises(desk: Any, raws: list[bytes]) -> None:
    before = _counts(desk)
    summary = _ingest_all(desk, raws)
    after = _counts(desk)
    # every input is accounted for: stored, a duplicate of something stored, or quarantined
    assert summary.imported + summary.duplicates + summary.quarantined == len(raws)
    assert after[0] - before[0] <= summary.imported + summary.duplicates


@SETTINGS
@given(st.lists(broken_mails(), min_size=1, max_size=3))
def test_structured_but_broken_mime_ingest_never_raises(desk: Any, raws: list[bytes]) -> None:
    summary = _ingest_all(desk, raws)
    assert summary.imported + summary.duplicates + summary.quarantined == len(raws)
    # a second delivery of the same bytes adds no message
    before = _counts(desk)[0]
    again = _ingest_all(desk, raws)
    assert again.imported == 0  # dedupe: by Message-ID, or a content hash without one
    assert _counts(desk)[0] == before
