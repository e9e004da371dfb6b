"""Fixtures for the team tests: each runs on SQLite and on a real PostgreSQL.

These tests pick their backend themselves (``backend`` is parametrized), so they carry
``sqlite_only`` and are not repeated by the ``SUPPORTDESK_TEST_DB=postgres`` run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DEFAULT_TEST_CONFIG, write_config


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.sqlite_only)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    """None for SQLite in the home; a fresh PostgreSQL database's URL otherwise."""
    if backend == "sqlite":
        return None
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def team_desk(home: Path, db_url: str | None) -> Iterator[Any]:
    from supportdesk.desk.desk import open_desk

    if not (home / "config.toml").exists():
        write_config(home, DEFAULT_TEST_CONFIG)
    d = open_desk(home, agent="alice", db_url=db_url)
    yield d
    d.close()


def proc_env(home: Path, db_url: str | None, **extra: str) -> dict[str, str]:
    """The environment for a ``supportdesk`` subprocess on this desk."""
    env = dict(os.environ)
    env.pop("SUPPORTDESK_HOME", None)
    env.pop("SUPPORTDESK_DB", None)
    if db_url:
        env["SUPPORTDESK_DB"] = db_url
    env.update(extra)
    return env
