"""Run the search tests on PostgreSQL too: ``SEARCH_TEST_PG_URL=postgresql+psycopg://...``
points the ``desk`` fixture at that (scratch!) database, emptied before each test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PG_URL = os.environ.get("SEARCH_TEST_PG_URL", "")

if PG_URL:

    @pytest.fixture
    def desk(home: Path) -> Iterator[Any]:
        import sqlalchemy as sa

        from supportdesk.desk.desk import open_desk
        from tests.conftest import DEFAULT_TEST_CONFIG, write_config

        engine = sa.create_engine(PG_URL)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()
        if not (home / "config.toml").exists():
            write_config(home, DEFAULT_TEST_CONFIG)
        d = open_desk(home, agent="alice", db_url=PG_URL)
        yield d
        d.close()

    @pytest.fixture
    def cli(home: Path, desk: Any) -> Any:
        from typer.testing import CliRunner

        from supportdesk.cli.main import app

        runner = CliRunner()

        def run(*args: str, input: str | None = None, agent: str = "alice") -> Any:  # noqa: A002
            argv = ["--home", str(home), "--db", PG_URL, "--as", agent, *args]
            return runner.invoke(app, argv, input=input)

        return run
