"""Moving a desk to PostgreSQL, and backups.

``migrate_to(desk, url)`` copies a SQLite desk into an empty PostgreSQL database with nothing
lost: the target is brought to the same schema by the same migrations, every table is copied row
by row with its ids (read inside one SQLite read transaction, so the copy is one consistent
snapshot even while agents keep working), the id sequences are moved past the copied ids, the
full-text index is rebuilt for PostgreSQL, and the row counts of every table are compared before
the target transaction commits. Any failure rolls the target back to empty.

``backup_sqlite(desk, dest)`` uses SQLite's online backup API (a consistent copy while the desk is
in use). For PostgreSQL, ``pg_dump_command(desk, dest)`` is the command to run.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel

import supportdesk.store.models  # noqa: F401  (registers the tables)
from supportdesk.core.locations import file_mode
from supportdesk.desk.desk import BadInput, Conflict, Desk, ServiceError
from supportdesk.store import search
from supportdesk.store.db import (
    Database,
    StoreError,
    _safe_url,
    is_postgres_url,
    normalize_url,
    open_database,
)

CHUNK = 2000


class MigrationFailed(ServiceError):
    """The copy did not verify; the target was rolled back."""

    code = 1


@dataclass
class TableCopy:
    table: str
    source_rows: int
    copied_rows: int

    @property
    def ok(self) -> bool:
        return self.source_rows == self.copied_rows


@dataclass
class MigrationReport:
    target: str
    tables: list[TableCopy] = field(default_factory=list)
    search_documents: int = 0
    nul_characters_replaced: int = 0

    @property
    def rows(self) -> int:
        return sum(t.copied_rows for t in self.tables)

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "tables": [
                {"table": t.table, "source_rows": t.source_rows, "copied_rows": t.copied_rows}
                for t in self.tables
            ],
            "rows": self.rows,
            "search_documents": self.search_documents,
            "nul_characters_replaced": self.nul_characters_replaced,
        }


def tables() -> list[sa.Table]:
    """Every table of the schema, parents before children."""
    return list(SQLModel.metadata.sorted_tables)


def _self_refs(table: sa.Table) -> list[str]:
    """Columns that point at the same table (filled in after all its rows exist)."""
    return [c.name for c in table.columns if any(fk.column.table is table for fk in c.foreign_keys)]


def _count(conn: sa.Connection, table: sa.Table) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0)


def _chunks(conn: sa.Connection, table: sa.Table) -> Iterator[list[dict[str, Any]]]:
    pk = list(table.primary_key.columns)
    result = conn.execution_options(stream_results=True).execute(sa.select(table).order_by(*pk))
    while True:
        rows = result.mappings().fetchmany(CHUNK)
        if not rows:
            return
        yield [dict(r) for r in rows]


def _clean(rows: list[dict[str, Any]]) -> int:
    """PostgreSQL text cannot hold NUL characters (SQLite can): replace them with U+FFFD."""
    n = 0
    for row in rows:
        for k, v in row.items():
            if isinstance(v, str) and "\x00" in v:
                n += v.count("\x00")
                row[k] = v.replace("\x00", "\ufffd")
    return n


def migrate_to(
    desk: Desk, url: str, *, progress: Callable[[str, int], None] | None = None
) -> MigrationReport:
    """Copy this SQLite desk into the empty PostgreSQL database at ``url``."""
    if not desk.db.is_sqlite:
        raise BadInput(f"migrate-to copies a SQLite desk; this desk already uses {desk.db.dialect}")
    url = normalize_url(url.strip())
    if not is_postgres_url(url):
        raise BadInput(
            "the target must be a PostgreSQL URL such as postgresql+psycopg://user@host/dbname"
        )
    target = open_database(desk.home, url)  # the same migrations bring it to the same schema
    report = MigrationReport(target=_safe_url(url))
    try:
        _copy(desk.db, target, report, progress)
    finally:
        target.dispose()
    return report


def _copy(
    source: Database,
    target: Database,
    report: MigrationReport,
    progress: Callable[[str, int], None] | None,
) -> None:
    with target.write_engine.connect() as dst:
        for table in tables():
            if dst.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first():
                raise Conflict(
                    f"the database at {report.target} already holds data (table {table.name}); "
                    "migrate-to only fills an empty database"
                )
        dst.rollback()
    # one read transaction on SQLite: every table comes from the same snapshot
    with source.read_engine.connect() as src, target.write_engine.begin() as dst:
        for table in tables():
            src_count = _count(src, table)
            refs = _self_refs(table)
            pk = [c.name for c in table.primary_key.columns]
            later: list[dict[str, Any]] = []
            copied = 0
            for rows in _chunks(src, table):
                report.nul_characters_replaced += _clean(rows)
                for row in rows:
                    if refs and any(row.get(r) is not None for r in refs):
                        later.append({**{f"k_{k}": row[k] for k in pk},
                                      **{f"v_{r}": row[r] for r in refs}})  # fmt: skip
                        for r in refs:
                            row[r] = None
                dst.execute(table.insert(), rows)
                copied += len(rows)
                if progress is not None:
                    progress(table.name, copied)
            if later:
                stmt = (
                    table.update()
                    .where(*[table.c[k] == sa.bindparam(f"k_{k}") for k in pk])
                    .values({r: sa.bindparam(f"v_{r}") for r in refs})
                )
                dst.execute(stmt, later)
            report.tables.append(TableCopy(table.name, src_count, _count(dst, table)))
            _reset_sequence(dst, table)
        report.search_documents = search.rebuild_all(dst)
        bad = [t for t in report.tables if not t.ok]
        if bad:
            detail = ", ".join(f"{t.table} {t.copied_rows} of {t.source_rows}" for t in bad)
            raise MigrationFailed(f"the copy did not verify ({detail}); nothing was kept")


def _reset_sequence(conn: sa.Connection, table: sa.Table) -> None:
    pk = list(table.primary_key.columns)
    if len(pk) != 1 or not isinstance(pk[0].type, sa.Integer):
        return
    seq = conn.execute(
        sa.text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": pk[0].name}
    ).scalar()
    if not seq:
        return
    conn.execute(
        sa.text(
            f'SELECT setval(:seq, COALESCE((SELECT MAX("{pk[0].name}") FROM "{table.name}"), 1), '
            f'(SELECT MAX("{pk[0].name}") FROM "{table.name}") IS NOT NULL)'
        ),
        {"seq": seq},
    )


# ---------------------------------------------------------------------------------- backups


@dataclass
class BackupResult:
    path: Path
    size: int
    pages: int

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "size": self.size, "pages": self.pages}


def backup_target(desk: Desk, dest: Path, *, suffix: str = ".db") -> Path:
    """``dest`` itself, or a dated file name inside it when it is a folder."""
    dest = dest.expanduser()
    if dest.is_dir():
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%SZ")
        dest = dest / f"supportdesk-{stamp}{suffix}"
    return dest


def backup_sqlite(desk: Desk, dest: Path, *, force: bool = False) -> BackupResult:
    """A consistent copy of the SQLite database while the desk stays in use."""
    if not desk.db.is_sqlite:
        raise BadInput("this desk uses PostgreSQL: back it up with pg_dump (see the command)")
    path = sa.engine.make_url(desk.db.url).database or ""
    dest = backup_target(desk, dest)
    if dest.exists() and not force:
        raise Conflict(f"{dest} already exists and replacing it was not asked for", field="force")
    if not dest.parent.is_dir():
        raise BadInput(f"the folder {dest.parent} does not exist")
    if dest.resolve() == Path(path).resolve():
        raise BadInput("the backup cannot replace the database it copies")
    tmp = dest.with_name(f".{dest.name}.partial")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode(desk.home))
    os.close(fd)
    try:
        src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        dst = sqlite3.connect(tmp)
        try:
            src.execute("PRAGMA busy_timeout=30000")
            src.backup(dst, pages=4096)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            check = dst.execute("PRAGMA quick_check").fetchone()
            pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
        finally:
            dst.close()
            src.close()
        if not check or check[0] != "ok":
            raise StoreError(f"the backup did not pass SQLite's check: {check}")
        os.replace(tmp, dest)
    except sqlite3.Error as exc:
        raise StoreError(f"the backup failed: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return BackupResult(dest, dest.stat().st_size, pages)


def pg_dump_command(desk: Desk, dest: Path) -> list[str]:
    """The pg_dump command that backs up this PostgreSQL desk into ``dest`` (custom format).

    The password is never part of it: pg_dump reads it from ~/.pgpass or PGPASSWORD.
    """
    if desk.db.dialect != "postgresql":
        raise BadInput("this desk uses SQLite: `supportdesk backup PATH` copies it directly")
    url = sa.engine.make_url(desk.db.url).set(drivername="postgresql", password=None)
    return [
        "pg_dump",
        "--format=custom",
        "--no-owner",
        f"--file={backup_target(desk, dest, suffix='.dump')}",
        url.render_as_string(hide_password=False),
    ]


__all__ = [
    "BackupResult",
    "MigrationFailed",
    "MigrationReport",
    "TableCopy",
    "backup_sqlite",
    "migrate_to",
    "pg_dump_command",
    "tables",
]
