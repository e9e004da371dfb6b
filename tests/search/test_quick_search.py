"""`supportdesk search` on the quick path (cli/quick.py: ``search.found`` over ``store.hits`` on a
DB-API connection) prints exactly what the full typer path prints (``SUPPORTDESK_QUICK=0``),
for JSON, CSV and the table, Russian and English words, prefixes, phrases, exclusions and
paging; hostile queries end the same way on both paths (same output, same exit code, one
sentence, no traceback); and the quick path loads none of the heavy modules.

The desk is the demo's seeded history (RU and EN) plus synthetic tickets and one ticket made of
hostile text (escape sequences, bidi marks, rich markup) that the searches find. In the
postgres run the desk's config names a PostgreSQL database, so the quick path runs over libpq.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supportdesk.cli.quick import parse
from tests.conftest import TEST_BACKEND

ROOT = Path(__file__).resolve().parents[2]

HOSTILE = (
    "\x1b[2J\x1b]52;c;ZXZpbA==\x07\x1b[31mПринтер\x1b[0m не печатает \u202eevil\u202c "
    "[bold]printer[/bold] \u200f\u05e9\u05dc\u05d5\u05dd\r\n\tnext "
)

# one inbound mail of hostile text, through ingest (which indexes it), on either backend
INGEST = f"""
import sys
from pathlib import Path
from supportdesk.desk.desk import open_desk
from tests.factories import inbound_email, ingest
H = {HOSTILE!r}
desk = open_desk(Path(sys.argv[1]))
ingest(desk, inbound_email(subject=H + "Ж" * 5000, text=H * 20 + " printer принтера toner",
       sender_name="\\x1b[1mЁлка\\u202e Ivanova [red]x[/red]",
       sender_address="hostile@example.com"))
ingest(desk, inbound_email(subject="Счёт за \\x1b[31mпринтер", text="оплата картой " + H,
       sender_name="Пётр", sender_address="petr@example.ru"))
"""

PG_BUILD = (
    "import sys; from pathlib import Path; from supportdesk.demo.build import build_demo; "
    "build_demo(Path(sys.argv[1]), size=int(sys.argv[2]), db_url=sys.argv[3]).close()"
)


def _env(**more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SUPPORTDESK_DB", "SUPPORTDESK_QUICK")}
    env.update(more)
    return env


def _sub(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=_env(), cwd=ROOT,
        check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def desk_home(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("quick-search") / "desk"
    pg: Any = None
    name = ""
    if TEST_BACKEND == "postgres":
        pg = request.getfixturevalue("postgres_server")
        name = pg.create_database()
        _sub("-c", PG_BUILD, str(home), "120", pg.url(name))
    else:
        _sub("-m", "supportdesk", "--home", str(home), "demo", "--no-tui", "--size", "120")
    _sub("-c", INGEST, str(home))
    try:
        yield home
    finally:
        if pg is not None:
            pg.drop_database(name)


def _run(home: Path, *args: str, quick: bool, columns: int = 100) -> tuple[int, str, str]:
    env = _env(COLUMNS=str(columns), TZ="UTC")
    if not quick:
        env["SUPPORTDESK_QUICK"] = "0"
    done = subprocess.run(
        [sys.executable, "-m", "supportdesk", "--home", str(home), *args],
        capture_output=True, text=True, env=env, check=False, timeout=120,
    )  # fmt: skip
    return done.returncode, done.stdout, done.stderr


FOUND = [
    ("printer", "--json"),
    ("printer",),
    ("принтер", "--json"),
    ("принтер",),
    ("принтера", "--csv"),
    ("прин*", "--json", "--newest"),
    ("print*", "-n", "5", "--offset", "2"),
    ('"не печатает"', "--json"),
    ("printer", "-toner", "--json"),
    ("printer", "NOT", "toner"),
    ("оплата", "картой", "-k", "messages", "--json"),
    ("printer", "--kind", "tickets", "-kmessages", "--kind=customers,kb", "--json"),
    ("ivanova", "--kind", "customers"),
    ("пароль", "-k", "kb", "--json"),
    ("hostile@example.com", "--json"),
    ("zzzzzz",),
    ("printer", "--limit=3", "--csv"),
]

HOSTILE_QUERIES = [
    ("",),
    (" ",),
    ('"',),
    ('"unclosed',),
    ('printer"',),
    ("AND", "OR"),
    ("NOT",),
    ("NEAR(printer toner)",),
    ("printer*", "*"),
    ("^printer",),
    ("title:printer",),
    ("'; DROP TABLE ticket; --",),
    ("\x1b[31mпринтер\x1b[0m",),
    ("\u202eпринтер\u202c", "\u200f"),
    ("[bold]printer[/bold]",),
    ("принтер" * 2000,),
    (" ".join(["слово"] * 100),),
    ("printer", "status:open"),  # a filter: the full path's, on either path
    ("printer", "status:bogus"),
    ("status:open",),
    ("printer", "-k", "bogus"),
    ("printer", "-n", "0"),
    ("printer", "-n", "501"),
    ("printer", "--offset", "-1"),
    ("printer", "--json", "--csv"),
    ("printer", "--bogus"),
    ("-",),
    ("printer", "--", "-toner"),
]


def _same(home: Path, args: tuple[str, ...], columns: int) -> tuple[int, str, str]:
    quick = _run(home, *args, quick=True, columns=columns)
    full = _run(home, *args, quick=False, columns=columns)
    assert quick == full, args
    return quick


@pytest.mark.parametrize("args", FOUND, ids=" ".join)
def test_quick_and_full_search_print_the_same_bytes(desk_home: Path, args: tuple[str, ...]) -> None:
    assert parse(["search", *args]) is not None  # the quick path takes it
    for columns in (80, 130):
        code, out, err = _same(desk_home, ("search", *args), columns)
        assert code == 0, err
        assert out.strip()
        if "--json" in args or "--csv" in args:
            continue
        # the terminal gets no escape sequence and no bidi override from the data
        assert "\x1b" not in out and "\u202e" not in out


def test_the_searches_find_what_they_should(desk_home: Path) -> None:
    """The comparison above is worth something only if the searches find things: the hostile
    ticket is found by an English and a Russian word form, through its text, and excluded."""
    ru = json.loads(_run(desk_home, "search", "принтера", "--json", "-n", "500", quick=True)[1])
    en = json.loads(_run(desk_home, "search", "printer", "--json", "-n", "500", quick=True)[1])
    for hits in (ru, en):
        assert any(h["kind"] == "ticket" and "не печатает" in h["title"] for h in hits)
        assert all(len(h["title"]) <= 302 for h in hits)
    excluded = json.loads(
        _run(desk_home, "search", "printer", "-toner", "--json", "-n", "500", quick=True)[1]
    )
    assert {h["id"] for h in excluded} < {h["id"] for h in en}
    messages = json.loads(
        _run(desk_home, "search", "оплата", "-k", "messages", "--json", quick=True)[1]
    )
    assert messages and all(h["kind"] == "message" for h in messages)


@pytest.mark.parametrize("args", HOSTILE_QUERIES, ids=repr)
def test_hostile_searches_end_the_same_way_on_both_paths(
    desk_home: Path, args: tuple[str, ...]
) -> None:
    code, out, err = _same(desk_home, ("search", *args), 100)
    assert "Traceback" not in err
    if code != 0:  # one sentence on stderr, nothing on stdout
        assert code == 2 and out == ""
        assert err.startswith("supportdesk: ") and err.endswith(".\n") and err.count("\n") == 1
        assert "\x1b" not in err
    else:
        assert out.strip() and err == ""


def test_quick_search_loads_no_heavy_module(desk_home: Path) -> None:
    """The quick path really answers (0, not None: nothing handed to the full path) without
    SQLAlchemy, SQLModel, pydantic, typer, alembic, psycopg or the model classes."""
    code = (
        "import sys\n"
        "from supportdesk.cli.quick import quick\n"
        "for argv in (['search', 'printer', '--json'], ['search', 'принтер'],\n"
        "             ['search', 'прин*', '-k', 'messages', '--csv', '--newest'],\n"
        "             ['search', 'printer', '-toner', '--kind', 'customers,kb']):\n"
        "    assert quick(['--home', sys.argv[1], *argv]) == 0, argv\n"
        "heavy = ('sqlalchemy', 'sqlmodel', 'pydantic', 'typer', 'alembic', 'psycopg',\n"
        "         'supportdesk.store.models', 'importlib.metadata')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(desk_home)],
        capture_output=True, text=True, env=_env(), check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]"


def test_what_search_the_quick_path_understands() -> None:
    assert parse(["--home", "h", "search", "printer", "-toner", "-n5", "--json"]) == (
        "search",
        {"--home": "h"},
        {"query": "printer NOT toner", "--limit": "5", "--json": ""},
    )
    assert parse(["search", "a", "-k", "messages", "--kind=kb", "--offset", "40", "b"]) == (
        "search",
        {},
        {"query": "a b", "--kind": "messages,kb", "--offset": "40"},
    )
    assert parse(["search", '-"a phrase"', "--newest"]) == (
        "search",
        {},
        {"query": 'NOT "a phrase"', "--newest": ""},
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["search"],
        ["search", "--json"],
        ["search", "--help"],
        ["search", "printer", "--help"],
        ["search", "printer", "--json", "--json"],
        ["search", "printer", "--json", "--csv"],
        ["search", "printer", "-n", "0"],
        ["search", "printer", "-n", "501"],
        ["search", "printer", "-n", "５"],
        ["search", "printer", "--limit"],
        ["search", "printer", "-k", "--json"],
        ["search", "printer", "--offset", "-1"],
        ["search", "printer", "--offset", "+1"],
        ["search", "printer", "--", "-x"],
        ["search", "printer", "-5"],
        ["search", "printer", "-"],
        ["search", "printer", "--bogus"],
        ["search", "printer", "--newest=yes"],
        ["search", ""],
    ],
)
def test_search_lines_not_understood_take_the_full_path(argv: list[str]) -> None:
    assert parse(argv) is None
