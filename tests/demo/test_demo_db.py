"""`supportdesk --db URL demo` keeps the demo's data in that database, and only an empty one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from supportdesk.cli.main import app

pytestmark = [pytest.mark.peers]


def test_demo_on_a_postgresql_database_and_never_over_a_used_one(
    tmp_path: Path, pg_empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the database named by --db and kept in config.toml, not the one the PostgreSQL test run
    # puts in SUPPORTDESK_DB (which would win over the config)
    monkeypatch.delenv("SUPPORTDESK_DB", raising=False)
    run = CliRunner()
    home = tmp_path / "demo"
    res = run.invoke(app, ["--home", str(home), "--db", pg_empty_url, "demo", "--no-tui"])
    assert res.exit_code == 0, res.output
    assert "database_url" in (home / "config.toml").read_text()
    assert not (home / "supportdesk.db").exists()  # nothing in SQLite beside it
    listed = run.invoke(app, ["--home", str(home), "tickets", "list", "--json", "-n", "5"])
    assert listed.exit_code == 0 and len(json.loads(listed.stdout)) == 5, listed.output
    # the same database again (now holding the demo's tickets): refused, one sentence, --db named
    again = run.invoke(app, ["--home", str(tmp_path / "d2"), "--db", pg_empty_url, "demo",
                             "--no-tui"])  # fmt: skip
    assert again.exit_code != 0
    assert "already holds" in again.output and "--db" in again.output
    assert "Traceback" not in again.output
