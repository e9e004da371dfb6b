"""The quick read path's database side: a plain ``sqlite3`` connection to the desk's SQLite
database, or a libpq one (``store.libpq``) to its PostgreSQL database, used only when it is
certainly at the schema this code knows (else the full path opens the desk and upgrades it).
Imports nothing heavy: no SQLAlchemy, no alembic, no psycopg.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from supportdesk.core.locations import database_path
from supportdesk.store.reads import Run

MIGRATIONS = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 30_000  # as store.db's engines


def migration_heads() -> set[str]:
    """The revisions no other migration script follows, read from the scripts' headers."""
    revs: dict[str, str | None] = {}
    for path in (MIGRATIONS / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        rev = re.search(r"^revision\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
        down = re.search(r"^down_revision\s*=\s*(?:['\"]([^'\"]+)['\"]|None)", text, re.M)
        if rev:
            revs[rev.group(1)] = down.group(1) if down else None
    return set(revs) - {d for d in revs.values() if d}


def open_sqlite(home: Path) -> sqlite3.Connection | None:
    """A connection to the home's SQLite database inside a read transaction, or None when the
    quick path cannot be sure of it: no database file, or a schema other than the head."""
    path = database_path(home)
    if not path.is_file():
        return None
    heads = migration_heads()
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("BEGIN")  # one snapshot for every query of the command, as a session
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        conn.close()
        return None
    if len(heads) != 1 or row is None or row[0] not in heads:
        conn.close()
        return None
    return conn


def sqlite_run(conn: sqlite3.Connection) -> Run:
    """Run the store's SQL (``:name`` parameters) on a sqlite3 connection."""

    def run(sql: str, params: dict[str, Any]) -> Sequence[Sequence[Any]]:
        return conn.execute(sql, params).fetchall()

    return run


def open_postgres(url: str) -> Any | None:
    """A libpq connection to the desk's PostgreSQL database inside one read-only snapshot, or
    None when the quick path cannot be sure of it: a driver other than psycopg, no connection,
    a schema other than the head, or a team desk (``team init``: the database decides who
    acts, and the full path reads the login)."""
    from supportdesk.store import libpq

    info = libpq.conninfo(url)
    if info is None:
        return None
    heads = migration_heads()
    try:
        conn = libpq.Connection(info)
    except libpq.Unsupported:
        return None
    try:
        # one snapshot for every query of the command, as a session's transaction
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        row = conn.run(
            "SELECT (SELECT version_num FROM alembic_version LIMIT 1), "
            "to_regprocedure('public.sd_trusted()') IS NOT NULL",
            {},
        )
    except (libpq.Unsupported, ValueError):
        conn.close()
        return None
    if len(heads) != 1 or not row or row[0][0] not in heads or row[0][1]:
        conn.close()
        return None
    return conn
