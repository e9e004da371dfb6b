"""Content-Type / Content-Disposition parameters read without the stdlib give exactly what
compat32's ``Message`` gives (the import's parsers take the fast way for simple values)."""

from __future__ import annotations

import random
from email.message import Message
from email.policy import compat32

from supportdesk.channels.email import headers as H

PIECES = [
    "a", "b", "T", "/", ";", "=", '"', " ", "\t", "\\", "<", ">", "*", "'", "%", "x-", "utf-8",
    "name", "filename", "charset", "boundary", "=?utf-8?q?a?=", "(", ")", ",", "\x00", "é",
]  # fmt: skip
NAMES = ["charset", "Charset", "boundary", "name", "NAME", "filename", "report-type", "x", "name*0"]


def _stdlib(ct: bytes | None, cd: bytes | None) -> H._Params:
    p = H._Params.__new__(H._Params)
    msg = Message(policy=compat32)
    if ct is not None:
        msg["Content-Type"] = H._decode_raw_header(ct, []).replace("\x00", "")
    if cd is not None:
        msg["Content-Disposition"] = H._decode_raw_header(cd, []).replace("\x00", "")
    p.msg, p.fast = msg, None
    p.ctype = msg.get_content_type() if ct is not None else "text/plain"
    if "/" not in p.ctype or " " in p.ctype:
        p.ctype = "text/plain"
    disp = msg.get_content_disposition() if cd is not None else None
    p.disposition = disp.strip() if disp else ""
    return p


def _ours(ct: bytes | None, cd: bytes | None) -> H._Params:
    headers = [("content-type", ct)] if ct is not None else []
    if cd is not None:
        headers.append(("content-disposition", cd))
    return H._Params(headers, "text/plain", [])


def _value(rnd: random.Random) -> str:
    v = "".join(rnd.choice(PIECES) for _ in range(rnd.randrange(0, 6)))
    return rnd.choice([v, f'"{v}"', v.replace('"', "")])


def _params(rnd: random.Random) -> str:
    parts = [
        rnd.choice([";", "; ", " ;"]) + rnd.choice(NAMES) + rnd.choice(["=", " = "]) + _value(rnd)
        for _ in range(rnd.randrange(0, 4))
    ]
    return "".join(parts) + rnd.choice(["", ";", " "])


def test_fast_parameters_match_the_stdlib() -> None:
    rnd = random.Random(21)
    fast = 0
    for _ in range(20_000):
        main = rnd.choice(["text/plain", "Text/HTML", "multipart/mixed", "x", "", " text/plain "])
        ct = (main + _params(rnd)).encode() if rnd.random() < 0.9 else None
        disp = rnd.choice(["attachment", "inline", "", "Attachment"])
        cd = (disp + _params(rnd)).encode() if rnd.random() < 0.5 else None
        ours, theirs = _ours(ct, cd), _stdlib(ct, cd)
        if ours.fast is None:
            continue
        fast += 1
        case = (ct, cd)
        assert (ours.ctype, ours.disposition) == (theirs.ctype, theirs.disposition), case
        for name in ("charset", "boundary", "name", "report-type", "x", "text/plain"):
            assert ours.param(name) == theirs.param(name), (case, name)
        assert ours.filename([]) == theirs.filename([]), case
    assert fast > 2_000  # the fast way was taken often enough to mean something


def test_odd_values_take_the_stdlib_way() -> None:
    for ct in (
        b"text/plain; name*=utf-8''%D1%84.txt",
        b'text/plain; name="a\\"b"',
        b"text/plain; charset=\xff",
        b"text/plain; format",
        b"text/plain; " + b" " * 5000 + b"x",
    ):
        assert _ours(ct, None).fast is None, ct
