"""The console's fast path (cli/console.py ``fast_console``, taken by cli/entry.py): ``supportdesk``
with at most ``--home`` and ``--as`` opens the same console as the typer path, without loading
typer; any other command line, and any error before the console runs, gets the typer path's
message and exit code; an error while the console runs ends as the typer path ends it.

Each run is the real ``supportdesk`` command in a subprocess whose ``run_console`` is replaced
by a probe that prints what it was given (and may raise, as a console that fails would).
``SUPPORTDESK_QUICK=0`` turns the fast path off: that is the typer path to compare with.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from supportdesk.cli.quick import _globals
from tests.conftest import DEFAULT_TEST_CONFIG, write_config

PROBE = r"""
import gc, json, os, sys
import supportdesk.ui.app as ui

def probe(desk):
    from supportdesk.cli import output
    print(json.dumps({
        "home": str(desk.home), "agent": desk.agent, "url": desk.db.url,
        "desk": desk.config.desk.name, "timezone": output._TZ_NAME, "gc": gc.get_threshold(),
        "typer": sorted(m for m in sys.modules if m == "typer" or m.startswith("typer.")),
        "cli_main": "supportdesk.cli.main" in sys.modules,
    }), flush=True)
    error = os.environ.get("PROBE_RAISE")
    if error == "service":
        from supportdesk.desk.desk import NotFound
        raise NotFound("ticket 99 is gone")
    if error == "internal":
        raise RuntimeError("the console broke")
    if error == "interrupt":
        raise KeyboardInterrupt
    if error == "exit":
        raise SystemExit(5)

ui.run_console = probe
sys.argv = ["supportdesk", *sys.argv[1:]]
from supportdesk.cli.entry import run
run()
"""


def _run(
    *args: str, fast: bool, env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[int, dict[str, Any] | None, str]:
    e = dict(os.environ, **(env or {}))
    e.pop("SUPPORTDESK_QUICK", None)
    if not fast:
        e["SUPPORTDESK_QUICK"] = "0"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        env=e,
        check=False,
        timeout=120,
        cwd=cwd,
    )
    out = done.stdout.strip()
    if out and not out.startswith("{"):  # not the probe's: --version
        return done.returncode, {"stdout": out}, done.stderr
    return done.returncode, json.loads(out) if out else None, done.stderr


@pytest.fixture
def desk_home(home: Path) -> Path:
    write_config(home, DEFAULT_TEST_CONFIG)
    from supportdesk.desk.desk import open_desk

    open_desk(home, agent="alice").close()  # created and migrated before either path opens it
    return home


@pytest.mark.parametrize(
    "args",
    [
        ["--home", "{home}"],
        ["--home={home}"],
        ["--home", "{home}", "--as", "bob"],
        ["--as=bob", "--home", "{home}"],
    ],
)
def test_fast_path_opens_the_same_console_without_typer(desk_home: Path, args: list[str]) -> None:
    argv = [a.format(home=desk_home) for a in args]
    code, fast, err = _run(*argv, fast=True)
    assert code == 0, err
    code_full, full, err_full = _run(*argv, fast=False)
    assert code_full == 0, err_full
    assert fast is not None and full is not None
    assert fast["typer"] == [] and not fast["cli_main"]
    assert full["typer"] and full["cli_main"]  # the comparison really ran the typer path
    for doc in (fast, full):
        del doc["typer"], doc["cli_main"]
    assert fast == full
    assert fast["home"] == str(desk_home)
    assert fast["agent"] == ("bob" if any("bob" in a for a in argv) else "alice")
    assert err == err_full == ""


def test_fast_path_reads_the_environment_as_the_options_do(desk_home: Path, tmp_path: Path) -> None:
    env = {"SUPPORTDESK_HOME": str(desk_home), "SUPPORTDESK_AGENT": "carol"}
    code, fast, err = _run(fast=True, env=env, cwd=tmp_path)
    assert code == 0, err
    _code, full, _err = _run(fast=False, env=env, cwd=tmp_path)
    assert fast is not None and full is not None
    assert fast["typer"] == [] and full["typer"]
    assert (
        (fast["home"], fast["agent"]) == (full["home"], full["agent"]) == (str(desk_home), "carol")
    )
    # an option beats its variable, on both paths
    code, fast, _err = _run("--as", "dave", fast=True, env=env, cwd=tmp_path)
    _code, full, _err = _run("--as", "dave", fast=False, env=env, cwd=tmp_path)
    assert fast is not None and full is not None
    assert fast["agent"] == full["agent"] == "dave"


@pytest.mark.parametrize(
    "args",
    [
        ["--home"],  # no value
        ["--home", "{home}", "--home", "{home}"],  # twice
        ["--home", "{home}", "--bogus"],
        ["--home", "{home}", "--as"],
        ["--home", "{home}", "tickets", "lsit"],
        ["--home", "{home}", "--version"],
    ],
)
def test_other_command_lines_get_the_typer_paths_answer(
    desk_home: Path, tmp_path: Path, args: list[str]
) -> None:
    argv = [a.format(home=desk_home) for a in args]
    fast = _run(*argv, fast=True)
    full = _run(*argv, fast=False)
    assert fast == full
    if "--version" in argv:
        assert fast[1] is not None and fast[1]["stdout"].startswith("supportdesk ")
    elif fast[1] is not None:  # typer opens the console for a repeated option (the last wins)
        assert argv.count("--home") == 2 and fast[1]["typer"] and fast[0] == 0
    else:
        assert fast[0] != 0 and fast[2].strip()


def test_an_error_before_the_console_gets_the_typer_paths_answer(
    desk_home: Path, tmp_path: Path
) -> None:
    # a config that does not read: the typer path's sentence and exit code 6
    (desk_home / "config.toml").write_text("[desk\nname = 1\n", encoding="utf-8")
    fast = _run("--home", str(desk_home), fast=True)
    assert fast == _run("--home", str(desk_home), fast=False)
    assert fast[0] == 6 and fast[1] is None and fast[2].startswith("supportdesk: ")
    # no desk there (on SQLite; a database URL needs no home): exit 3, and no desk created
    nowhere = tmp_path / "nowhere"
    fast = _run("--home", str(nowhere), fast=True)
    full = _run("--home", str(nowhere), fast=False)
    if "SUPPORTDESK_DB" in os.environ:
        assert fast[0] == full[0] == 0
        assert fast[1] is not None and full[1] is not None
        assert fast[1]["typer"] == [] and full[1]["typer"]
        assert fast[1]["home"] == full[1]["home"] == str(nowhere)
    else:
        assert fast == full
        assert fast[0] == 3 and fast[1] is None and "there is no desk" in fast[2]
        assert not nowhere.exists()


@pytest.mark.parametrize(
    ("error", "code"), [("service", 3), ("internal", 70), ("interrupt", 130), ("exit", 5)]
)
def test_an_error_in_the_console_ends_as_on_the_typer_path(
    desk_home: Path, error: str, code: int
) -> None:
    env = {"PROBE_RAISE": error}
    fast = _run("--home", str(desk_home), fast=True, env=env)
    full = _run("--home", str(desk_home), fast=False, env=env)
    assert fast[1] is not None and fast[1]["typer"] == []  # the fast path ran the console
    assert fast[0] == full[0] == code
    assert fast[2] == full[2]
    if error != "exit":
        assert fast[2].startswith("supportdesk: ")


def test_the_fast_path_takes_only_global_options() -> None:
    # cli.quick's reading of --home/--as, which the fast path shares
    assert _globals([]) == ({}, [])
    assert _globals(["--home", "x", "--as", "y"]) == ({"--home": "x", "--as": "y"}, [])
    assert _globals(["--home", "x", "status"]) == ({"--home": "x"}, ["status"])
    for bad in (
        ["--home"],
        ["--home", "-x"],
        ["--home="],
        ["--db", "x"],
        ["--as", "a", "--as", "b"],
    ):
        assert _globals(bad) is None


def test_shell_completion_is_never_the_console(desk_home: Path) -> None:
    # the shell runs ``supportdesk`` with no command and _SUPPORTDESK_COMPLETE set: typer answers
    # with the completion script (or the words), and no console opens
    env = {"SUPPORTDESK_HOME": str(desk_home), "_SUPPORTDESK_COMPLETE": "source_bash"}
    code, fast, err = _run(fast=True, env=env)
    assert code == 0, err
    assert fast is not None and "stdout" in fast  # not the probe's document: no console ran
    assert "_SUPPORTDESK_COMPLETE" in fast["stdout"]
    assert _run(fast=False, env=env) == (code, fast, err)
