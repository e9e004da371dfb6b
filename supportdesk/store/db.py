"""Engine and sessions.

SQLite runs in WAL with ``synchronous=NORMAL`` and a busy timeout, and every write transaction
starts with ``BEGIN IMMEDIATE`` (FACTS.md: plain BEGIN fails most concurrent writers with
"database is locked"). Reads use a separate engine with deferred transactions so a console that
only looks never holds the write lock. PostgreSQL takes the same code through its URL.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session

from supportdesk.locations import database_path, ensure_home, file_mode


class StoreError(Exception):
    """The database cannot be opened or used. One sentence."""


BUSY_TIMEOUT_MS = 30_000


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    engine = sa.create_engine(
        url,
        connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        pool_pre_ping=False,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _rec: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """One desk's database: a write engine and a read engine over the same URL."""

    def __init__(self, url: str, home: Path | None = None):
        self.url = url
        self.home = home
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.write_engine = _sqlite_engine(url, immediate=True)
            self.read_engine = _sqlite_engine(url, immediate=False)
        else:
            self.write_engine = sa.create_engine(url, pool_pre_ping=True)
            self.read_engine = self.write_engine
        self.dialect = self.write_engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: committed on success, rolled back on error."""
        with Session(self.write_engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A short read transaction."""
        with Session(self.read_engine, expire_on_commit=False) as session:
            yield session  # closing ends the transaction; loaded objects stay readable

    def dispose(self) -> None:
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()


def open_database(home: Path, url: str | None = None, *, migrate: bool = True) -> Database:
    """Open (creating and upgrading as needed) the desk's database."""
    from supportdesk.store.migrate import upgrade_if_needed

    ensure_home(home)
    if url is None:
        path = database_path(home)
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, file_mode(home))
            os.close(fd)
        url = sqlite_url(path)
    try:
        db = Database(url, home)
        if migrate:
            upgrade_if_needed(db)
    except sa.exc.OperationalError as exc:
        raise StoreError(f"the database at {_safe_url(url)} cannot be opened: {exc.orig}") from None
    return db


def _safe_url(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(the configured URL)"
