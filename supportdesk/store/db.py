"""Engine and sessions.

SQLite runs in WAL with ``synchronous=NORMAL`` and a busy timeout, and every write transaction
starts with ``BEGIN IMMEDIATE`` (FACTS.md: plain BEGIN fails most concurrent writers with
"database is locked"). Reads use a separate engine with deferred transactions so a console that
only looks never holds the write lock.

PostgreSQL takes the same code through its URL (``postgresql+psycopg://user@host/db``). To give
the services the same guarantee as ``BEGIN IMMEDIATE`` (one writer at a time, so a
read-then-write such as "find the customer, else create it" never races another writer), every
write transaction first takes a transaction-scoped advisory lock (``pg_advisory_xact_lock``),
released by its commit or rollback; reads take no lock. Advisory locks are scoped to the database,
so two desks on one server do not contend.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session

from supportdesk.core.errors import StoreError as StoreError  # raised here; callers catch it
from supportdesk.core.errors import refusal
from supportdesk.core.locations import database_path, ensure_home, file_mode
from supportdesk.store import slamark as _slamark  # noqa: F401  (its before_flush guard)
from supportdesk.store.reads import Run

BUSY_TIMEOUT_MS = 30_000
DEFAULT_CACHE_KIB = 2000  # SQLite's own default page cache (``PRAGMA cache_size=-2000``)
BULK_CACHE_KIB = 64 << 10  # ... while a bulk import writes
# advisory lock keys (per database): writers, and the named leases in services/runtime.py
WRITE_LOCK_KEY = 0x5D_0001
# PostgreSQL: the tables that hold rows and were never analyzed, or grew by a tenth or more (in
# pages on disk) since their statistics were taken (``relpages``, set by ANALYZE, VACUUM and
# CREATE INDEX); the size, not the server's row counters, which a backend sends on only so often
PG_GROWN_TABLES = (
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid "
    "CROSS JOIN LATERAL (SELECT pg_relation_size(c.oid) "
    "/ current_setting('block_size')::bigint AS pages) p "
    "WHERE n.nspname = current_schema() AND c.relkind = 'r' AND p.pages > 0 AND ("
    "c.reltuples < 0 OR p.pages >= c.relpages * 1.1 "
    "OR COALESCE(s.last_analyze, s.last_autoanalyze) IS NULL) ORDER BY c.relname"
)

# PostgreSQL: the columns the closing ANALYZE of a bulk write leaves out -- free text that no
# query filters, joins, groups or sorts on. Their statistics were most of that ANALYZE's cost
# (wide values of many distinct strings, each compared in the column's collation) and no plan
# reads them; autovacuum's own ANALYZE, when it comes, still takes every column.
PG_UNPLANNED_COLUMNS = {
    "message": (
        "subject", "text", "quoted_text", "html", "references", "versions", "author",
        "author_address", "raw_sha256", "in_reply_to", "to_addresses", "cc_addresses",
        "bcc_addresses",
    ),
    "search_doc": ("title", "body", "extra"),  # tsv (generated from them) is what is searched
    "ticket": ("subject", "csat_comment"),
}  # fmt: skip
PG_COLUMNS_SQL = (
    "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
    "AND c.relname = %(t)s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
)


def pg_analyze_sql(table: str, columns: Sequence[str]) -> str:
    """``ANALYZE`` of ``table`` (whose columns are ``columns``), but the columns no plan reads."""
    left_out = PG_UNPLANNED_COLUMNS.get(table, ())
    kept = [c for c in columns if c not in left_out]
    if not left_out or not kept:
        return f'ANALYZE "{table}"'
    return f'ANALYZE "{table}" (' + ", ".join(f'"{c}"' for c in kept) + ")"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


# SQLite: the journal and sync settings every connection gets (``Database.unjournaled`` swaps)
JOURNALED = {"journal_mode": "WAL", "synchronous": "NORMAL"}
UNJOURNALED = {"journal_mode": "OFF", "synchronous": "OFF"}


def _sqlite_engine(url: str, *, immediate: bool, journal: dict[str, str]) -> Engine:
    engine = sa.create_engine(
        url,
        connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        pool_pre_ping=False,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _rec: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA journal_mode={journal['journal_mode']}")
        cur.execute(f"PRAGMA synchronous={journal['synchronous']}")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _postgres_engine(url: str, *, writer: bool) -> Engine:
    engine = sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    if writer:

        @event.listens_for(engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")

    return engine


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql", "postgres:"))


def normalize_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` mean the psycopg 3 driver (the one installed)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Database:
    """One desk's database: a write engine and a read engine over the same URL."""

    def __init__(self, url: str, home: Path | None = None):
        url = normalize_url(url)
        self.url = url
        self.home = home
        self.is_sqlite = url.startswith("sqlite")
        self._journal = dict(JOURNALED)  # SQLite: what new connections are set to
        if self.is_sqlite:
            self.write_engine = _sqlite_engine(url, immediate=True, journal=self._journal)
            self.read_engine = _sqlite_engine(url, immediate=False, journal=self._journal)
        elif is_postgres_url(url):
            self.write_engine = _postgres_engine(url, writer=True)
            self.read_engine = _postgres_engine(url, writer=False)
        else:
            self.write_engine = sa.create_engine(url, pool_pre_ping=True)
            self.read_engine = self.write_engine
        self.dialect = self.write_engine.dialect.name
        self._cache_kib: int | None = None  # SQLite: the write connections' page cache, if set

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: committed on success, rolled back on error."""
        with Session(self.write_engine, expire_on_commit=False) as session:
            try:
                if self._cache_kib is not None:
                    conn = session.connection()
                    if conn.info.get("cache_kib", DEFAULT_CACHE_KIB) != self._cache_kib:
                        conn.exec_driver_sql(f"PRAGMA cache_size=-{int(self._cache_kib)}")
                        conn.info["cache_kib"] = self._cache_kib
                yield session
                session.commit()
            except sa.exc.DBAPIError as exc:
                session.rollback()
                denied = refusal(exc)
                if denied is not None:
                    raise denied from None
                raise
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def bulk_writes(self, cache_kib: int = BULK_CACHE_KIB) -> Iterator[None]:
        """Write transactions in this block keep a bigger page cache (SQLite; PostgreSQL: no
        effect). A bulk import's indexes and search segments then stay in memory from one batch
        to the next instead of being read back from the OS each time (about half of the
        import's system time). What is written, and when it is durable, does not change."""
        if not self.is_sqlite:
            yield
            return
        self._cache_kib = cache_kib
        try:
            yield
        finally:
            self._cache_kib = DEFAULT_CACHE_KIB  # the next write puts a connection back

    @contextmanager
    def unjournaled(self) -> Iterator[None]:
        """SQLite: the block's writes without a rollback journal and without syncs, then WAL
        again (PostgreSQL: no effect). In WAL mode each page a bulk load writes goes to the log
        and again into the file at the checkpoint. Without a journal a transaction that fails
        cannot be rolled back and may leave the file corrupt: only for a database that is
        thrown away if the block fails (the demo's, built in a folder of its own). Every
        connection of this Database is closed on the way in and out (leaving WAL needs the
        only connection) and the ones opened inside are set the same way."""
        if not self.is_sqlite:
            yield
            return
        self._set_journal(UNJOURNALED)
        try:
            yield
        finally:
            self._set_journal(JOURNALED)

    def _set_journal(self, journal: dict[str, str]) -> None:
        self.dispose()
        self._journal.update(journal)
        raw = self.write_engine.raw_connection()  # connects: the new settings
        try:
            cur = raw.cursor()
            cur.execute("PRAGMA journal_mode")
            row = cur.fetchone()
            cur.close()
        finally:
            raw.close()
        if not row or str(row[0]).upper() != journal["journal_mode"]:
            raise RuntimeError(f"SQLite did not switch to journal_mode {journal['journal_mode']}")

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A short read transaction."""
        with Session(self.read_engine, expire_on_commit=False) as session:
            try:
                yield session  # closing ends the transaction; loaded objects stay readable
            except sa.exc.DBAPIError as exc:
                denied = refusal(exc)
                if denied is not None:
                    raise denied from None
                raise

    def bound_idle_transactions(self, seconds: float) -> None:
        """PostgreSQL: the server ends any session of this process that sits idle inside a
        transaction for longer than ``seconds``. A frozen process (SIGSTOP, a stalled VM) keeps
        its session and would otherwise hold the write lock, and with it every other writer,
        for as long as it is frozen. No effect on SQLite, whose locks a frozen process keeps."""
        if self.dialect != "postgresql":
            return
        ms = max(int(seconds * 1000), 1)

        def _on_connect(dbapi_conn: Any, _rec: Any) -> None:
            dbapi_conn.execute(f"SET idle_in_transaction_session_timeout = {ms}")
            dbapi_conn.commit()

        for engine in {self.write_engine, self.read_engine}:
            event.listen(engine, "connect", _on_connect)
            engine.dispose()  # connections made before this get the setting too

    def analyze(self, *, every_table: bool = False) -> None:
        """Refresh the planner's statistics after bulk writes (lets SQLite pick the queue index).

        PostgreSQL: only the tables that were never analyzed, or grew by a tenth or more since
        (``PG_GROWN_TABLES``): an import into a big desk leaves the tables it barely changed,
        and the ones it did not touch, to autovacuum (which analyzes at the same tenth); and
        of those, the columns a plan reads (``PG_UNPLANNED_COLUMNS``).
        ``every_table``: all of them, for a writer that rebuilt indexes (the demo's load):
        CREATE INDEX sets the size ``PG_GROWN_TABLES`` compares with, so a table analyzed
        while empty and then loaded with its indexes dropped looked neither new nor grown, and
        kept no statistics. On PostgreSQL ``every_table`` is ``VACUUM (ANALYZE)``: the vacuum
        sets the visibility map of the rows just loaded, without which an index-only scan reads
        the table for every entry (the report's period counts, migration 0014) until autovacuum
        comes by, a minute or more after the load."""
        if self.dialect == "postgresql" and every_table:
            auto = self.write_engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            with auto as conn:
                conn.exec_driver_sql("VACUUM (ANALYZE)")  # not inside a transaction
            return
        with self.write_engine.connect() as conn:
            if self.dialect == "postgresql":
                for (name,) in conn.exec_driver_sql(PG_GROWN_TABLES).all():
                    cols = []
                    if name in PG_UNPLANNED_COLUMNS:
                        cols = [c for (c,) in conn.exec_driver_sql(PG_COLUMNS_SQL, {"t": name})]
                    conn.exec_driver_sql(pg_analyze_sql(name, cols))
            else:
                conn.exec_driver_sql("ANALYZE")
            conn.commit()

    def dispose(self) -> None:
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()


def session_run(session: Session) -> Run:
    """Run the store's SQL (``store.reads``, ``:name`` parameters) in ``session``'s transaction."""

    def run(sql: str, params: dict[str, Any]) -> Any:
        return session.connection().execute(sa.text(sql), params).all()

    return run


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
        raise StoreError(
            f"the database at {_safe_url(url)} cannot be opened: {_first_line(exc.orig)}"
        ) from None
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        raise StoreError(f"the database URL {_safe_url(url)} is not usable: {exc}") from None
    return db


def _first_line(exc: object) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _safe_url(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(the configured URL)"
