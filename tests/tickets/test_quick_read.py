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
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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
            _hostile_ticket(db, str(past))
        db.close()
    return home


HOSTILE = (
    "\x1b[2J\x1b]52;c;ZXZpbA==\x07\x1b[31mПринтер\x1b[0m не печатает \u202eevil\u202c "
    "[bold]x[/bold] \u200f\u05e9\u05dc\u05d5\u05dd\r\n\tnext "
)


def _hostile_ticket(db: sqlite3.Connection, at: str) -> None:
    """A ticket made of hostile text (ANSI and OSC escapes, bidi marks, rich markup, Cyrillic, a
    subject of 20,000 characters), with every part `tickets show` prints: an inbound mail with
    To and Cc (the desk's own address among them), a reply in doubt, a note edited twice, an
    attachment, and a customer with another ticket and a customer merged into them."""

    def insert(table: str, **cols: object) -> int:
        names = ", ".join(f'"{c}"' for c in cols)
        marks = ", ".join("?" for _ in cols)
        cur = db.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(cols.values()))
        return int(cur.lastrowid or 0)

    def customer(name: str, merged_into: int | None = None) -> int:
        return insert("customer", name=name, company=HOSTILE, phone="+7 900 \x1b[1m", language="ru",
                      notes=HOSTILE * 3, csat_opt_out=0, merged_into_id=merged_into,
                      created_at=at, updated_at=at)  # fmt: skip

    def ticket(cid: int, subject: str, status: str = "open") -> int:
        return insert("ticket", subject=subject, status=status, priority="urgent",
                      priority_rank=3, priority_locked=0, channel="support", kind="email",
                      customer_id=cid, created_at=at, updated_at=at, due_at=at,
                      sla_paused_seconds=0, sla_breached=1, message_count=3, ack_sent=0,
                      reply_to_address="Hostile@Example.COM", spam=0,
                      csat_comment=HOSTILE)  # fmt: skip

    def message(tid: int, direction: str, text: str, **more: object) -> int:
        cols: dict[str, object] = {
            "ticket_id": tid, "direction": direction, "channel": "support", "kind": "email",
            "author": HOSTILE[:40], "author_address": "hostile@example.com", "references": "",
            "subject": HOSTILE, "text": text, "quoted_text": "", "created_at": at,
            "received_at": at, "thread_reason": "", "auto_reason": "", "versions": "",
            "is_auto": 0,
        }  # fmt: skip
        cols.update(more)
        return insert("message", **cols)

    cid = customer("\x1b[1mЁлка\u202e Ivanova")
    insert("identity", customer_id=cid, kind="email", address="hostile@example.com",
           display=HOSTILE, created_at=at)  # fmt: skip
    merged = customer("Old \x1b[5mself", merged_into=cid)
    ticket(merged, "older " + HOSTILE, status="solved")
    ticket(cid, "sibling " + HOSTILE, status="pending")
    tid = ticket(cid, HOSTILE + "Ж" * 20_000)
    first = message(tid, "in", HOSTILE * 20, quoted_text="> quoted\n> twice",
                    to_addresses="support@acme.test Третий@Пример.РФ",
                    cc_addresses="Third@Example.COM SUPPORT@acme.test x",
                    html="<p>\x1b[31mhi</p>")  # fmt: skip
    insert("attachment", message_id=first, filename="\x1b[31mсчёт\u202efdp.exe", size=12345,
           content_type="application/pdf\x1b[0m", note=HOSTILE, inline=0,
           stored_path="attachments/x")  # fmt: skip
    reply = message(tid, "out", "Ответ " + HOSTILE, author="Алиса",
                    to_addresses="hostile@example.com", cc_addresses="cc@example.com",
                    bcc_addresses="b@example.com")  # fmt: skip
    insert("outbox", ticket_id=tid, message_id=reply, channel="support", kind="email",
           to_address="hostile@example.com", state="in_doubt", attempts=2,
           last_error="SMTP \x1b[31mtimeout\u202e", external_message_id="", sent_parts=0,
           payload="{}", created_at=at)  # fmt: skip
    message(tid, "note", "note " + HOSTILE, edited_at=at,
            versions='["first \\u001b[1m", "second \\u202e"]')  # fmt: skip


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


def _show_ids(home: Path) -> list[int]:
    """Tickets worth showing: the hostile one and its sibling (history, a merged customer), the
    demo's first and newest, an e-mail thread with a reply; and one that does not exist."""
    if TEST_BACKEND != "sqlite":  # the demo's tickets, whatever their numbers
        import json

        listed = _run(home, "tickets", "list", "--json", "-n", "2", quick=False)[1]
        return [row["id"] for row in json.loads(listed)] + [999_999]
    db = sqlite3.connect(home / "supportdesk.db")
    try:
        hostile, sibling = (
            db.execute("SELECT max(id) FROM ticket WHERE subject LIKE ?", (pattern,)).fetchone()[0]
            for pattern in (HOSTILE[:12] + "%", "sibling %")
        )
        newest = db.execute("SELECT max(id) FROM ticket WHERE id < ?", (sibling,)).fetchone()[0]
        replied = db.execute(
            "SELECT ticket_id FROM outbox WHERE ticket_id IS NOT NULL ORDER BY id"
        ).fetchone()[0]
    finally:
        db.close()
    return [hostile, sibling, 1, newest, replied, 999_999]


@pytest.mark.parametrize("form", [("--json",), (), ("wide",)], ids=["json", "80", "130"])
def test_tickets_show_quick_and_full_print_the_same_bytes(
    varied: Path, form: tuple[str, ...]
) -> None:
    columns = 130 if form == ("wide",) else 80
    args = tuple(a for a in form if a != "wide")
    for tid in _show_ids(varied):
        quick = _run(varied, "tickets", "show", str(tid), *args, quick=True, columns=columns)
        full = _run(varied, "tickets", "show", str(tid), *args, quick=False, columns=columns)
        if quick != full and not args:  # ages ("5m ago") may straddle a minute; not twice
            quick = _run(varied, "tickets", "show", str(tid), *args, quick=True, columns=columns)
            full = _run(varied, "tickets", "show", str(tid), *args, quick=False, columns=columns)
        assert quick == full, tid
        if tid == 999_999:
            assert quick[0] == 3
            assert quick[2] == "supportdesk: ticket #999999 does not exist.\n"
        else:
            assert quick[0] == 0 and quick[1].strip(), quick[2]
            if not args:  # the terminal gets no escape and no bidi override
                assert "\x1b" not in quick[1] and "\u202e" not in quick[1]


@pytest.mark.sqlite_only
def test_tickets_show_quick_path_is_taken_and_escapes(varied: Path) -> None:
    """The quick path really answers `tickets show` (a document without the full path), and the
    hostile ticket comes out inert: one line per header, no escape reaches the terminal."""
    import json

    from supportdesk.runner.quick import open_quick

    tid = _show_ids(varied)[0]
    desk = open_quick(varied, None)
    assert desk is not None
    try:
        doc = desk.show(tid)
    finally:
        desk.close()
    assert len(doc["subject"]) > 20_000
    # the customer (Reply-To) and the desk's own address (any case) are not participants
    assert doc["participants"] == [
        "третий@xn--e1afmkfd.xn--p1ai",
        "third@example.com",
        "cc@example.com",
    ]
    assert [h["status"] for h in doc["history"]] == ["pending", "solved"]
    assert json.loads(_run(varied, "tickets", "show", str(tid), "--json", quick=True)[1]) == doc
    code, out, _err = _run(varied, "tickets", "show", str(tid), quick=True, columns=80)
    assert code == 0 and out.splitlines()[0].startswith(f"#{tid} ")
    assert "\x1b" not in out and "\u202e" not in out and "Ёлка" in out


@pytest.mark.sqlite_only
def test_a_postgresql_desk_it_cannot_reach_takes_the_full_path(tmp_path: Path) -> None:
    """A certified config naming a PostgreSQL database the quick path cannot connect to (team
    desks, where roles are enforced, are refused too: see
    test_postgres_quick_path_steps_aside_when_unsure)."""
    from supportdesk.core.quickconfig import certify, quick_config
    from supportdesk.runner.quick import open_quick

    home = tmp_path / "team"
    home.mkdir()
    text = '[desk]\nname = "Team"\ndatabase_url = "postgresql:///nowhere"\n'
    (home / "config.toml").write_text(text, encoding="utf-8")
    certify(home, text, [], set())
    cfg = quick_config(home)
    assert cfg is not None and cfg.database_url
    assert open_quick(home, None) is None


@pytest.mark.sqlite_only
def test_quick_path_loads_no_heavy_module(varied: Path) -> None:
    code = (
        "import sys\n"
        "from supportdesk.cli.quick import quick\n"
        "for argv in (['status', '--json'], ['tickets', 'list', '--csv', '-n', '5'],\n"
        "             ['tickets', 'show', '1'], ['tickets', 'show', '2', '--json']):\n"
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
        ["tickets", "show"],
        ["tickets", "show", "0"],
        ["tickets", "show", "-1"],
        ["tickets", "show", "+1"],
        ["tickets", "show", "１"],
        ["tickets", "show", "1e3"],
        ["tickets", "show", "9223372036854775808"],
        ["tickets", "show", "1", "2"],
        ["tickets", "show", "1", "--json", "--json"],
        ["tickets", "show", "1", "--csv"],
        ["tickets", "show", "--json", "1"],
        ["tickets", "show", "1", "--help"],
        ["search", "printer", "--help"],  # (search itself: tests/search/test_quick_search.py)
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
    assert parse(["tickets", "show", "0042", "--json"]) == (
        "tickets show",
        {},
        {"id": "0042", "--json": ""},
    )


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


def test_the_search_query_builder_loads_no_heavy_module() -> None:
    """The query language's parser and the full-text query builder are the full path's own
    (re-exported by search.query and store.search), importable without SQLAlchemy: a quick
    `search` can parse and render exactly as the full one does."""
    code = (
        "import sys\n"
        "from supportdesk.search.terms import parse\n"
        "from supportdesk.store.fts import Parsed, make_term, render\n"
        "q = parse('принтера* -toner \"не печатает\"')\n"
        "terms = [make_term(t.value, phrase=t.key == 'phrase', negated=t.negated)"
        " for t in q.words]\n"
        "print(render(Parsed(terms).terms, 'sqlite'))\n"
        "heavy = ('sqlalchemy', 'sqlmodel', 'pydantic', 'typer', 'supportdesk.store.models')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ['("принтер"* AND "не печата") NOT "toner"', "[]"]
    from supportdesk.search import query, terms
    from supportdesk.store import fts, search

    assert query.parse is terms.parse and query.QueryError is terms.QueryError
    assert search.make_term is fts.make_term and search.render is fts.render


# --- PostgreSQL desks: the same quick path over libpq (store/libpq.py) ---------------------

PG_BUILD = (
    "import sys; from pathlib import Path; from supportdesk.demo.build import build_demo; "
    "build_demo(Path(sys.argv[1]), size=int(sys.argv[2]), db_url=sys.argv[3]).close()"
)


@pytest.fixture(scope="module")
def pg_varied(tmp_path_factory: pytest.TempPathFactory, postgres_server: Any) -> Iterator[Path]:
    """A demo desk whose config.toml names its PostgreSQL database (as a real one does: the
    quick path steps aside for ``SUPPORTDESK_DB``), with a channel in error, a quarantined
    message, a live lease and outbox rows in several states."""
    import psycopg

    name = postgres_server.create_database()
    url = postgres_server.url(name)
    home = tmp_path_factory.mktemp("quick-pg") / "desk"
    env = {k: v for k, v in os.environ.items() if k != "SUPPORTDESK_DB"}
    done = subprocess.run(
        [sys.executable, "-c", PG_BUILD, str(home), "120", url],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    soon = (datetime.now(UTC) + timedelta(minutes=30)).replace(tzinfo=None)
    past = (datetime.now(UTC) - timedelta(hours=2)).replace(tzinfo=None)
    with psycopg.connect(postgres_server.dsn(name)) as db:
        db.execute(
            "INSERT INTO channel_state (channel, last_success_at, last_error_at, last_error,"
            " failures) VALUES ('billing', %s, %s, 'IMAP login refused: \x1b[31mno\x1b[0m', 3)",
            (past, soon),
        )
        db.execute(
            "INSERT INTO quarantine (channel, source, raw_sha256, error, created_at, attempts)"
            " VALUES ('support', 'INBOX/7', 'ab', 'bad MIME', %s, 1)",
            (past,),
        )
        db.execute(
            "INSERT INTO lease (name, holder, pid, host, heartbeat_at, expires_at, epoch)"
            " VALUES ('runner', 'bob', 4242, 'desk-host', %s, %s, 1)",
            (past, soon),
        )
        ids = [r[0] for r in db.execute("SELECT id FROM outbox ORDER BY id LIMIT 2")]
        db.execute("UPDATE outbox SET state = 'failed' WHERE id = ANY(%s)", (ids,))
    try:
        yield home
    finally:
        postgres_server.drop_database(name)


@pytest.mark.parametrize(
    "args", [*COMMANDS, ("tickets", "show", "1"), ("tickets", "show", "2", "--json")], ids=" ".join
)
def test_postgres_quick_and_full_paths_print_the_same_bytes(
    pg_varied: Path, args: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SUPPORTDESK_DB", raising=False)
    quick = _run(pg_varied, *args, quick=True, columns=130)
    full = _run(pg_varied, *args, quick=False, columns=130)
    if quick != full and "--json" not in args and "--csv" not in args:
        quick = _run(pg_varied, *args, quick=True, columns=130)  # ages straddling a minute
        full = _run(pg_varied, *args, quick=False, columns=130)
    assert quick[0] == 0, quick[2]
    assert quick == full
    assert quick[1].strip()


def test_postgres_quick_path_loads_no_heavy_module(
    pg_varied: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SUPPORTDESK_DB", raising=False)
    code = (
        "import sys\n"
        "from supportdesk.cli.quick import quick\n"
        "for argv in (['status', '--json'], ['tickets', 'list', '--csv', '-n', '5']):\n"
        "    assert quick(['--home', sys.argv[1], *argv]) == 0, argv\n"
        "heavy = ('sqlalchemy', 'sqlmodel', 'pydantic', 'typer', 'alembic', 'psycopg',\n"
        "         'supportdesk.store.models', 'importlib.metadata')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(pg_varied)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]"


def test_postgres_quick_path_steps_aside_when_unsure(postgres_server: Any) -> None:
    """An older schema, a team desk (the database decides who acts), another driver or a
    database that cannot be reached: no quick connection, the full path answers."""
    import psycopg

    from supportdesk.store.db import Database
    from supportdesk.store.migrate import upgrade_if_needed
    from supportdesk.store.quick import open_postgres

    name = postgres_server.create_database()
    url = postgres_server.url(name)
    try:
        assert open_postgres(url) is None  # no schema at all
        db = Database(url)
        upgrade_if_needed(db)
        db.dispose()
        conn = open_postgres(url)
        assert conn is not None
        assert conn.run("SELECT count(*) FROM ticket WHERE id > :n", {"n": 0}) == [(0,)]
        conn.close()
        assert open_postgres(url.replace("+psycopg", "+psycopg2")) is None
        assert open_postgres(url.replace(name, name + "_missing")) is None
        with psycopg.connect(postgres_server.dsn(name), autocommit=True) as raw:
            raw.execute(
                "CREATE FUNCTION sd_trusted() RETURNS boolean LANGUAGE sql AS 'SELECT true'"
            )
            assert open_postgres(url) is None
            raw.execute("DROP FUNCTION sd_trusted()")
            assert open_postgres(url) is not None
            raw.execute("UPDATE alembic_version SET version_num = '0006'")
            assert open_postgres(url) is None
    finally:
        postgres_server.drop_database(name)
