"""A damaged raw ledger file behind a quarantined message: `quarantine retry` reports it in one
clear line, never a traceback, and never ingests bytes that are not what was received."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from supportdesk.store.files import raw_path

pytestmark = pytest.mark.fault

# no sender address: the parser refuses it, so it lands in quarantine with its raw bytes kept
BROKEN = (
    b"From: \r\nTo: support@acme.test\r\nSubject: =?utf-8?q?=D0=B1=D0=B5=D0=B7_=D0=B0=D0=B4?=\r\n"
    b"Message-ID: <nosender@example.ru>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    + "Тело письма без отправителя\r\n".encode()
)


def _quarantined(home: Path, cli: Callable[..., Any], tmp_path: Path) -> dict[str, Any]:
    eml = tmp_path / "broken.eml"
    eml.write_bytes(BROKEN)
    res = cli("import", str(eml))
    assert res.exit_code == 0, res.output
    [entry] = json.loads(cli("quarantine", "list", "--json").stdout)
    assert raw_path(home, entry["raw_sha256"]).read_bytes() == BROKEN
    return entry


def _no_tickets(cli: Callable[..., Any]) -> None:
    assert json.loads(cli("tickets", "list", "--json").stdout) == []


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 3], id="truncated"),
        pytest.param(lambda data: b"", id="emptied"),
        pytest.param(lambda data: bytes(b ^ 0x5A for b in data), id="garbled"),
        pytest.param(None, id="deleted"),
    ],
)
def test_retry_with_a_damaged_raw_file_reports_cleanly(
    home: Path, cli: Callable[..., Any], tmp_path: Path, damage: Callable[[bytes], bytes] | None
) -> None:
    entry = _quarantined(home, cli, tmp_path)
    path = raw_path(home, entry["raw_sha256"])
    if damage is None:
        path.unlink()
    else:
        path.write_bytes(damage(path.read_bytes()))
    res = cli("quarantine", "retry", "--json")
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    summary = json.loads(res.stdout)
    assert summary["imported"] == 0
    assert summary["quarantined"] + summary["unreadable"] == 1
    human = cli("quarantine", "retry")
    assert human.exit_code == 0 and "Traceback" not in human.output
    assert human.output.count("\n") == 1  # one line
    # the entry stays in quarantine, nothing was made of the damaged bytes
    [still] = json.loads(cli("quarantine", "list", "--json").stdout)
    assert still["id"] == entry["id"] and still["resolved_at"] is None
    shown = cli("quarantine", "show", str(entry["id"]))
    assert shown.exit_code == 0 and "Traceback" not in shown.output
    _no_tickets(cli)


def test_damaged_bytes_that_parse_are_not_ingested(
    home: Path, cli: Callable[..., Any], tmp_path: Path
) -> None:
    """The ledger is content-addressed: bytes that no longer match their hash are not the
    message we received, even when they happen to parse."""
    entry = _quarantined(home, cli, tmp_path)
    path = raw_path(home, entry["raw_sha256"])
    path.write_bytes(BROKEN.replace(b"From: \r\n", b"From: mallory@example.net\r\n"))
    res = cli("quarantine", "retry", "--json")
    assert res.exit_code == 0 and "Traceback" not in res.output
    summary = json.loads(res.stdout)
    assert summary["imported"] == 0 and summary["unreadable"] == 1
    _no_tickets(cli)
