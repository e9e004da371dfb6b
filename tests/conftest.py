"""Shared test set-up: keep the developer's machine out of the tests.

Fixtures here: ``home`` (an empty desk home), ``desk`` (an open Desk on it, agent "alice"),
``cli`` (run the CLI in-process against that home), and builders in ``tests/factories.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest_plugins: list[str] = ["tests.peers.dovecot", "tests.peers.smtp_sink", "tests.peers.botapi"]


@pytest.fixture(autouse=True)
def _isolated_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    xdg = tmp_path_factory.mktemp("xdg")
    monkeypatch.setenv("XDG_DATA_HOME", str(xdg / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg / "config"))
    monkeypatch.setenv("SUPPORTDESK_AGENT", "alice")
    monkeypatch.delenv("SUPPORTDESK_HOME", raising=False)
    monkeypatch.delenv("SUPPORTDESK_DB", raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.delenv("EDITOR", raising=False)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "desk"
    h.mkdir(mode=0o700)
    return h


def write_config(home: Path, text: str) -> None:
    (home / "config.toml").write_text(text, encoding="utf-8")


DEFAULT_TEST_CONFIG = """
[desk]
name = "Acme support"
timezone = "UTC"

[[channel]]
name = "support"
type = "email"
address = "support@acme.test"

[[channel]]
name = "telegram"
type = "telegram"
token_env = "TEST_TG_TOKEN"

[sla]
first_response = "4h"
resolution = "3d"
[sla.channel.telegram]
first_response = "5m"
"""


@pytest.fixture
def desk(home: Path) -> Iterator[Any]:
    from supportdesk.services.desk import open_desk

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
