"""Shared test set-up: keep the developer's machine out of the tests.

Fixtures here: ``home`` (an empty desk home), ``desk`` (an open Desk on it, agent "alice"),
``cli`` (run the CLI in-process against that home), and builders in ``tests/factories.py``.

Backends: by default every desk is SQLite in its home. With ``SUPPORTDESK_TEST_DB=postgres`` each
test gets a fresh PostgreSQL database from the ``tests.peers.postgres`` fixtures instead: the
``desk`` fixture, every in-process ``open_desk`` and every ``supportdesk`` subprocess (through
``SUPPORTDESK_DB``) use it. Tests that are about SQLite itself carry ``@pytest.mark.sqlite_only``
and are skipped in that run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.configs import desk_config

pytest_plugins: list[str] = [
    "tests.peers.dovecot",
    "tests.peers.smtp_sink",
    "tests.peers.botapi",
    "tests.peers.postgres",
    "tests.peers.http_sink",
]

TEST_BACKEND = os.environ.get("SUPPORTDESK_TEST_DB", "sqlite").strip().lower() or "sqlite"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only: about SQLite itself; skipped when SUPPORTDESK_TEST_DB=postgres"
    )


def pytest_report_header(config: pytest.Config) -> str:
    return f"supportdesk test database backend: {TEST_BACKEND}"


@pytest.fixture(autouse=True)
def _isolated_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    xdg = tmp_path_factory.mktemp("xdg")
    monkeypatch.setenv("XDG_DATA_HOME", str(xdg / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg / "cache"))
    monkeypatch.setenv("SUPPORTDESK_AGENT", "alice")
    monkeypatch.delenv("SUPPORTDESK_HOME", raising=False)
    monkeypatch.delenv("SUPPORTDESK_DB", raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.delenv("EDITOR", raising=False)


@pytest.fixture(autouse=True)
def _backend(_isolated_env: None, request: pytest.FixtureRequest) -> None:
    """Point every desk opened by the test at a fresh PostgreSQL database in the postgres run."""
    if TEST_BACKEND == "sqlite":
        return
    if TEST_BACKEND != "postgres":
        pytest.fail(f"SUPPORTDESK_TEST_DB must be sqlite or postgres, not {TEST_BACKEND!r}")
    if request.node.get_closest_marker("sqlite_only"):
        pytest.skip("about SQLite itself (SUPPORTDESK_TEST_DB=postgres)")
    url: str = request.getfixturevalue("pg_url")
    import supportdesk.desk.desk as desk_mod

    real = desk_mod.open_database
    mp: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    mp.setenv("SUPPORTDESK_DB", url)
    mp.setattr(
        desk_mod,
        "open_database",
        lambda home, url_=None, **kw: real(home, url_ or url, **kw),
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "desk"
    h.mkdir(mode=0o700)
    return h


def write_config(home: Path, text: str) -> None:
    (home / "config.toml").write_text(text, encoding="utf-8")


DEFAULT_TEST_CONFIG = desk_config()


@pytest.fixture
def desk(home: Path) -> Iterator[Any]:
    from supportdesk.desk.desk import open_desk

    if not (home / "config.toml").exists():
        write_config(home, DEFAULT_TEST_CONFIG)
    d = open_desk(home, agent="alice")
    yield d
    d.close()


@pytest.fixture
def cli(home: Path) -> Callable[..., Any]:
    """Run the CLI in-process: ``cli("tickets", "list", "--json", input="...")``."""
    from typer.testing import CliRunner

    from supportdesk.cli.main import app

    if not (home / "config.toml").exists():
        write_config(home, DEFAULT_TEST_CONFIG)
    runner = CliRunner()

    def run(*args: str, input: str | None = None, agent: str = "alice") -> Any:  # noqa: A002
        return runner.invoke(app, ["--home", str(home), "--as", agent, *args], input=input)

    return run
