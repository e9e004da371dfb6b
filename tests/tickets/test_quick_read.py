"""The read commands' quick path (cli/quick.py) prints exactly what the full typer path prints,
loads none of the heavy modules, and steps aside whenever it cannot be sure.

The desk is the demo's seeded history (RU and EN, three channels, tags, assignees) plus
synthetic tickets, a channel in error, a quarantined message, outbox rows in several states
and a live runner lease, so that every part of `status` and of a queue row has data.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from supportdesk.cli.quick import parse
from tests.conftest import TEST_BACKEND


def _run(home: Path, *args: str, quick: bool, columns: int = 100) -> tuple[int, str, str]:
    env = dict(os.environ, COLUMNS=str(columns), TZ="UTC")
    env.pop("SUPPORTDESK_QUICK", None)
    if not quick:
        env["SUPPORTDESK_QUICK"] = "0"
    done = subprocess.run(
        [sys.executable, "-m", "supportdesk", "--home", str(home), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    return done.returncode, done.stdout, done.stderr


@pytest.fixture(scope="module")
def varied(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("quick") / "desk"
    env = dict(os.environ)
    done = subprocess.run(
        [sys.executable, "-m", "supportdesk", "--home", str(home), "demo", "--no-tui"]
        + ["--size", "120"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    if TEST_BACKEND == "sqlite":
        soon = (datetime.now(UTC) + timedelta(minutes=30)).replace(tzinfo=None)
        past = (datetime.now(UTC) - timedelta(hours=2)).replace(tzinfo=None)
        db = sqlite3.connect(home / "supportdesk.db")
        with db:
            db.execute(
                "INSERT INTO channel_state (channel, last_success_at, last_error_at, last_error,"
                " failures) VALUES ('billing', ?, ?, 'IMAP login refused: \x1b[31mno\x1b[0m', 3)",
                (str(past), str(soon)),
            )
            db.execute(
                "INSERT INTO channel_state (channel, last_success_at, last_error, failures)"
                " VALUES ('support', ?, '', 0)",
                (str(past),),
            )
            db.execute(
                "INSERT INTO quarantine (channel, source, raw_sha256, error, created_at, attempts)"
                " VALUES ('support', 'INBOX/7', 'ab', 'bad MIME', ?, 1)",
                (str(past),),
            )
            db.execute(
                "INSERT INTO lease (name, holder, pid, host, heartbeat_at, expires_at, epoch)"
                " VALUES ('runner', 'bob', 4242, 'desk-host', ?, ?, 1)",
                (str(past), str(soon)),
            )
            ids = [r[0] for r in db.execute("SELECT id FROM outbox ORDER BY id LIMIT 3")]
            db.execute("UPDATE outbox SET state = 'failed' WHERE id = ?", (ids[0],))
            db.execute("UPDATE outbox SET state = 'in_doubt' WHERE id = ?", (ids[1],))
            db.execute("UPDATE outbox SET state = 'queued' WHERE id = ?", (ids[2],))
        db.close()
    return home


COMMANDS = [
    ("status",),
    ("status", "--json"),
    ("tickets", "list"),
    ("tickets", "list", "--json"),
    ("tickets", "list", "--csv", "-n", "0"),
    ("tickets", "list", "--json", "--limit=7", "--order", "newest"),
    ("tickets", "list", "-n3", "--order=updated", "--csv"),
    ("tickets", "list", "--order", "updated", "-n", "500"),
]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("columns", [80, 130])
def test_quick_and_full_paths_print_the_same_bytes(
    varied: Path, args: tuple[str, ...], columns: int
) -> None:
    quick = _run(varied, *args, quick=True, columns=columns)
    full = _run(varied, *args, quick=False, columns=columns)
    if quick != full and "--json" not in args and "--csv" not in args:
        # a table shows ages ("5m"): the two runs may straddle a minute; not twice in a row
        quick = _run(varied, *args, quick=True, columns=columns)
        full = _run(varied, *args, quick=False, columns=columns)
    assert quick[0] == 0, quick[2]
    assert quick == full
    assert quick[1].strip()


@pytest.mark.sqlite_only
def test_quick_path_loads_no_heavy_module(varied: Path) -> None:
    code = (
        "import sys\n"
        "from supportdesk.cli.quick import quick\n"
        "for argv in (['status', '--json'], ['tickets', 'list', '--csv', '-n', '5']):\n"
        "    assert quick(['--home', sys.argv[1], *argv]) == 0, argv\n"
        "heavy = ('sqlalchemy', 'sqlmodel', 'pydantic', 'typer', 'alembic',\n"
        "         'supportdesk.store.models', 'importlib.metadata')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(varied)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    "argv",
    [
        ["tickets", "list", "status:open"],  # query terms: the query language is the full path's
        ["tickets", "list", "-status:open"],
        ["tickets", "list", "--help"],
        ["--help"],
        ["status", "--json", "--json"],
        ["tickets", "list", "--json", "--csv"],
        ["tickets", "list", "-n", "-1"],
        ["tickets", "list", "-n", "ten"],
        ["tickets", "list", "-n", "５"],
        ["tickets", "list", "--order", "coldest"],
        ["tickets", "list", "--limit"],
        ["--db", "sqlite:///x.db", "status"],
        ["--home"],
        ["--home", "x", "--home", "y", "status"],
        ["tickets", "show", "1"],
        ["search", "printer"],
        ["status", "extra"],
    ],
)
def test_anything_not_understood_takes_the_full_path(argv: list[str]) -> None:
    assert parse(argv) is None


def test_what_is_understood() -> None:
    assert parse(["--home", "h", "--as=bob", "tickets", "list", "-n5", "--json"]) == (
        "tickets list",
        {"--home": "h", "--as": "bob"},
        {"--limit": "5", "--json": ""},
    )
    assert parse(["status"]) == ("status", {}, {})


@pytest.mark.sqlite_only
def test_a_changed_config_is_validated_again(varied: Path, tmp_path: Path) -> None:
    """A config edited after its last validation is not trusted: a bad one gets the full
    path's one-sentence error, a good one is read (and stamped) again."""
    import shutil

    home = tmp_path / "copy"
    shutil.copytree(varied, home)
    cfg = home / "config.toml"
    good = cfg.read_text(encoding="utf-8")
    cfg.write_text(good.replace('name = "billing"', 'name = "bil ling"'), encoding="utf-8")
    quick = _run(home, "status", "--json", quick=True)
    full = _run(home, "status", "--json", quick=False)
    assert quick == full
    assert quick[0] == 6 and "channel" in quick[2] and quick[2].count("\n") == 1
    cfg.write_text(good.replace("Acme support", "Acme help"), encoding="utf-8")
    quick = _run(home, "status", "--json", quick=True)
    assert quick[0] == 0 and '"desk": "Acme help"' in quick[1]
    assert quick == _run(home, "status", "--json", quick=False)


@pytest.mark.sqlite_only
def test_an_older_schema_takes_the_full_path(varied: Path, tmp_path: Path) -> None:
    import shutil

    from supportdesk.store.quick import open_sqlite

    home = tmp_path / "copy"
    shutil.copytree(varied, home)
    conn = open_sqlite(home)
    assert conn is not None
    conn.close()
    db = sqlite3.connect(home / "supportdesk.db")
    with db:
        db.execute("UPDATE alembic_version SET version_num = '0006'")
    db.close()
    assert open_sqlite(home) is None


def test_builtin_head_matches_the_migrations() -> None:
    from supportdesk.store.migrate import head_revision
    from supportdesk.store.quick import migration_heads

    assert migration_heads() == {head_revision()}
