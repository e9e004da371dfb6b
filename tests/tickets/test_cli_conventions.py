"""CLI conventions: --version, local short times, --limit 0 and the cut-list hint, --json and
--csv exclusive, the outbox id people need for `outbox cancel`, aligned search output."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import DEFAULT_TEST_CONFIG, write_config
from tests.factories import inbound_email, ingest


def _desk(home: Path, n: int = 3) -> None:
    from supportdesk.desk.desk import open_desk

    write_config(
        home, DEFAULT_TEST_CONFIG.replace('timezone = "UTC"', 'timezone = "Europe/Moscow"')
    )
    desk = open_desk(home, agent="alice")
    try:
        for i in range(n):
            ingest(desk, inbound_email(subject=f"Printer {i}", external_id=f"conv{i}@example.ru",
                                       sender_address=f"c{i}@example.ru"))  # fmt: skip
    finally:
        desk.close()


def test_version(cli: Callable[..., Any]) -> None:
    res = cli("--version")
    assert res.exit_code == 0
    assert re.fullmatch(r"supportdesk \d+\.\d+\.\d+\S*\n", res.stdout)


def test_json_and_csv_exclusive(home: Path, cli: Callable[..., Any]) -> None:
    _desk(home, 1)
    for args in (("tickets", "list"), ("outbox", "list"), ("search", "printer")):
        res = cli(*args, "--json", "--csv")
        assert res.exit_code != 0, args
        assert "give --json or --csv, not both" in res.stderr
        assert res.stdout == ""


def test_limit_zero_is_all_and_a_cut_list_says_so(home: Path, cli: Callable[..., Any]) -> None:
    _desk(home, 3)
    res = cli("tickets", "list", "--limit", "2", "--json")
    assert len(json.loads(res.stdout)) == 2
    assert "Showing the first 2; --limit N shows more, --limit 0 shows all." in res.stderr
    res = cli("tickets", "list", "--limit", "0", "--json")
    assert len(json.loads(res.stdout)) == 3 and res.stderr == ""


def test_human_times_are_local_and_short(home: Path, cli: Callable[..., Any]) -> None:
    _desk(home, 1)
    out = cli("tickets", "show", "1").stdout
    assert "2026-11-20 13:00" in out  # 10:00 UTC in Moscow
    assert not re.search(r"\d\d:\d\d:\d\d", out) and "+00:00" not in out
    assert json.loads(cli("tickets", "show", "1", "--json").stdout)["created_at"].endswith("+00:00")


def test_outbox_list_shows_the_id_cancel_takes(home: Path, cli: Callable[..., Any]) -> None:
    _desk(home, 1)
    assert cli("tickets", "reply", "1", "--text", "hi").exit_code == 0
    out = cli("outbox", "list").stdout
    header, row = out.splitlines()[:2]
    assert header.split()[0] == "#" and row.split()[0] == "1"
    assert cli("outbox", "cancel", row.split()[0]).exit_code == 0


def test_search_output_is_aligned(home: Path, cli: Callable[..., Any]) -> None:
    _desk(home, 3)
    lines = cli("search", "printer").stdout.splitlines()
    heads = [ln for ln in lines if ln.startswith(("#", "customer", "kb"))]
    assert len(heads) >= 3
    starts = {re.search(r"\S\s{2,}(\S)", ln).start(1) for ln in heads}  # type: ignore[union-attr]
    assert len(starts) == 1, lines
