"""Hostile e-mails end to end: `supportdesk import`, then `tickets list` and `tickets show`.

Asserted: escape sequences (OSC 52 clipboard writes, CSI colours, the 8-bit C1 CSI, BEL) never
reach the terminal raw — they are shown as placeholders — while --json keeps the data exactly;
Rich markup in data prints literally; attachment names that look like paths or devices are saved
under home/attachments with safe names and the original name kept as data; deep multiparts,
a 1 MB single-line body and broken or mislabelled charsets are handled without a traceback.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from supportdesk.store.files import safe_filename

OSC52 = "\x1b]52;c;ZWNobyBwd25lZA==\x07"
CSI = "\x1b[31m"
C1_CSI = "\x9b2J"
MARKUP = "[bold]x[/bold]"
RAW_CONTROLS = ("\x1b", "\x9b", "\x07")


def _b64word(text: str) -> str:
    return f"=?utf-8?B?{base64.b64encode(text.encode()).decode()}?="


def _import(cli: Callable[..., Any], tmp_path: Path, name: str, raw: bytes) -> dict[str, Any]:
    path = tmp_path / name
    path.write_bytes(raw)
    res = cli("import", str(path), "--json")
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    return dict(json.loads(res.stdout))


def _only_ticket(cli: Callable[..., Any]) -> dict[str, Any]:
    listing = json.loads(cli("tickets", "list", "--json").stdout)
    assert len(listing) == 1
    doc = json.loads(cli("tickets", "show", str(listing[0]["id"]), "--json").stdout)
    return dict(doc)


def _human(cli: Callable[..., Any], *args: str) -> str:
    res = cli(*args)
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    for ch in RAW_CONTROLS:
        assert ch not in res.stdout, f"raw {ch!r} reached the terminal in {args}"
    return str(res.stdout)


def test_escape_sequences_and_markup_are_inert(
    home: Path, cli: Callable[..., Any], tmp_path: Path
) -> None:
    subject = f"Help {OSC52}{CSI}red{C1_CSI} {MARKUP}"
    body = f"Body {OSC52} and {CSI}colour and {C1_CSI} and {MARKUP} and bell\x07.\n"
    raw = (
        f"From: {_b64word('Eve ' + CSI + 'Evil')} <eve@example.com>\r\n"
        f"To: support@acme.test\r\nSubject: {_b64word(subject)}\r\n"
        "Message-ID: <esc1@example.com>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        f"{base64.encodebytes(body.encode()).decode()}"
    ).encode()
    summary = _import(cli, tmp_path, "esc.eml", raw)
    assert summary["imported"] == 1
    # the data is kept exactly (JSON escapes what needs escaping)
    doc = _only_ticket(cli)
    assert doc["subject"] == subject
    assert doc["messages"][0]["text"].rstrip("\n") == body.rstrip("\n")
    # people see placeholders and literal markup
    listing = _human(cli, "tickets", "list")
    shown = _human(cli, "tickets", "show", str(doc["id"]))
    for out in (listing, shown):
        assert "␛" in out
    assert MARKUP in shown and "ZWNobyBwd25lZA==" in shown
    assert "\\x9b" in shown and "\\x07" in shown


def test_raw_8bit_escape_bytes_in_headers(
    home: Path, cli: Callable[..., Any], tmp_path: Path
) -> None:
    raw = (
        b"From: \x1b]0;pwned\x07Mallory <mallory@example.com>\r\nTo: support@acme.test\r\n"
        b"Subject: \x1b[2J\x1b[Hcleared \xc2\x9b31m " + MARKUP.encode() + b"\r\n"
        b"Message-ID: <esc2@example.com>\r\n\r\nplain body \x1b[5mblink\r\n"
    )
    _import(cli, tmp_path, "esc2.eml", raw)
    doc = _only_ticket(cli)
    assert "cleared" in doc["subject"] and MARKUP in doc["subject"]
    shown = _human(cli, "tickets", "show", str(doc["id"]))
    assert "cleared" in shown and MARKUP in shown
    _human(cli, "tickets", "list")


HOSTILE_NAMES = [
    "../../etc/passwd",
    "C:\\Windows\\evil.exe",
    "CON",
    "nul.txt",
    "LPT1.log",
    "a\x00b.txt",
    ".bashrc",
    "x" * 500 + ".pdf",
    f"{OSC52}clip.txt",
    "/absolute/path.sh",
    "..",
    "имя файла.docx",
]


def _rfc2231(name: str) -> str:
    from urllib.parse import quote

    return "utf-8''" + quote(name, safe="")


def test_path_like_attachment_names_are_stored_safely(
    home: Path, cli: Callable[..., Any], tmp_path: Path
) -> None:
    parts = []
    for i, name in enumerate(HOSTILE_NAMES):
        data = f"attachment {i}\n".encode()
        parts.append(
            "--BOUND\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Disposition: attachment; filename*={_rfc2231(name)}\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n"
            f"{base64.b64encode(data).decode()}\r\n"
        )
    raw = (
        "From: Olga <olga@example.ru>\r\nTo: support@acme.test\r\nSubject: files\r\n"
        "Message-ID: <files@example.ru>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="BOUND"\r\n\r\n'
        "--BOUND\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee attached.\r\n"
        + "".join(parts)
        + "--BOUND--\r\n"
    ).encode()
    _import(cli, tmp_path, "files.eml", raw)
    doc = _only_ticket(cli)
    atts = doc["messages"][0]["attachments"]
    assert len(atts) == len(HOSTILE_NAMES)
    # the original names are kept as data (NUL is the one character dropped)
    assert [a["filename"] for a in atts] == [n.replace("\x00", "") for n in HOSTILE_NAMES]
    assert all(a["stored"] for a in atts)
    base = (home / "attachments").resolve()
    stored = sorted(p for p in base.rglob("*") if p.is_file())
    assert len(stored) == len(HOSTILE_NAMES)
    contents = set()
    for p in stored:
        assert base in p.resolve().parents  # nothing outside home/attachments
        name = p.name
        assert "\x00" not in name and "/" not in name and "\\" not in name
        assert not name.startswith(".") and len(name) <= 130
        assert all(ch.isprintable() for ch in name)
        stem = name.split("-", 1)[1].split(".")[0].upper()
        assert stem not in {"CON", "NUL", "LPT1", "PRN", "AUX"}
        contents.add(p.read_bytes())
    assert contents == {f"attachment {i}\n".encode() for i in range(len(HOSTILE_NAMES))}
    # nothing was written where the names pointed
    assert not (home / "etc").exists() and not (home.parent / "etc").exists()
    assert not Path("/absolute/path.sh").exists()
    # the safe-name rule itself, on the nastiest inputs
    for n in HOSTILE_NAMES:
        s = safe_filename(n)
        assert s and "/" not in s and "\\" not in s and "\x00" not in s and len(s) <= 120
    # people see the names inertly
    shown = _human(cli, "tickets", "show", str(doc["id"]))
    assert "../../etc/passwd" in shown  # shown as data, not acted on


def _deep(depth: int) -> bytes:
    lines = [
        "From: deep@example.com",
        "To: support@acme.test",
        "Subject: deep",
        f"Message-ID: <deep{depth}@example.com>",
    ]
    for i in range(depth):
        lines += [f'Content-Type: multipart/mixed; boundary="b{i}"', "", f"--b{i}"]
    lines += ["Content-Type: text/plain", "", "the innermost words", ""]
    for i in reversed(range(depth)):
        lines.append(f"--b{i}--")
    return "\r\n".join(lines).encode()


def test_deep_multipart(home: Path, cli: Callable[..., Any], tmp_path: Path) -> None:
    _import(cli, tmp_path, "deep90.eml", _deep(90))
    doc = _only_ticket(cli)
    assert "the innermost words" in doc["messages"][0]["text"]
    _human(cli, "tickets", "show", str(doc["id"]))


def test_absurdly_deep_multipart_is_stored_without_a_traceback(
    home: Path, cli: Callable[..., Any], tmp_path: Path
) -> None:
    # the parser walks 100 levels and skips what is deeper; the message itself is kept
    summary = _import(cli, tmp_path, "deep5000.eml", _deep(5000))
    assert summary["imported"] == 1
    doc = _only_ticket(cli)
    assert doc["subject"] == "deep"
    _human(cli, "tickets", "show", str(doc["id"]))


def test_one_megabyte_single_line_body(home: Path, cli: Callable[..., Any], tmp_path: Path) -> None:
    line = ("слово " * 190_000)[:1_000_000]
    raw = (
        "From: long@example.ru\r\nTo: support@acme.test\r\nSubject: long line\r\n"
        "Message-ID: <long@example.ru>\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n" + line + "\r\n"
    ).encode()
    t0 = time.monotonic()
    _import(cli, tmp_path, "long.eml", raw)
    doc = _only_ticket(cli)
    assert doc["messages"][0]["text"].startswith("слово слово")
    assert len(doc["messages"][0]["text"]) >= 900_000  # not silently cut to nothing
    _human(cli, "tickets", "show", str(doc["id"]))
    _human(cli, "tickets", "list")
    assert time.monotonic() - t0 < 30


@pytest.mark.parametrize(
    ("label", "encoding", "needle"),
    [
        ("utf-8", "cp1251", "Здравствуйте"),  # cp1251 bytes labelled UTF-8
        ("us-ascii", "koi8-r", "Здравствуйте"),  # koi8-r bytes labelled ASCII
        ("x-no-such-charset", "utf-8", "Здравствуйте"),  # an unknown label
        ("iso-8859-1", "cp1251", "Здравствуйте"),  # the classic mislabel
    ],
)
def test_broken_and_mislabelled_charsets(
    home: Path,
    cli: Callable[..., Any],
    tmp_path: Path,
    label: str,
    encoding: str,
    needle: str,
) -> None:
    text = "Здравствуйте! Не работает принтер, помогите пожалуйста. Спасибо за помощь."
    raw = (
        (
            f"From: Иван <ivan@example.ru>\r\nTo: support@acme.test\r\n"
            f"Subject: =?{label}?B?{base64.b64encode(text[:12].encode(encoding)).decode()}?=\r\n"
            f"Message-ID: <cs-{label}-{encoding}@example.ru>\r\n"
            f"Content-Type: text/plain; charset={label}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        ).encode()
        + text.encode(encoding)
        + b"\r\n"
    )
    _import(cli, tmp_path, "cs.eml", raw)
    doc = _only_ticket(cli)
    assert needle in doc["messages"][0]["text"]
    assert "\ufffd" not in doc["messages"][0]["text"]
    _human(cli, "tickets", "show", str(doc["id"]))
    _human(cli, "tickets", "list")
