"""The bulk insert path stores values exactly as the ORM does (same text for times)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from supportdesk.desk.desk import Desk
from supportdesk.inbound.ingest import ingest_many
from tests.factories import inbound_email

SA_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")


@pytest.mark.sqlite_only  # SQLite keeps times as text; PostgreSQL has a timestamp type
def test_bulk_rows_store_times_in_the_orm_format(desk: Desk) -> None:
    assert desk.db.is_sqlite
    msg = inbound_email(sent_at=datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC))  # no microseconds
    with desk.db.write() as s:
        ingest_many(s, desk, [msg], historical=True)
    with desk.db.read() as s:
        conn = s.connection()
        created = conn.execute(sa.text("SELECT created_at FROM ticket")).scalar()
        sent = conn.execute(sa.text("SELECT created_at FROM message")).scalar()
        event = conn.execute(sa.text("SELECT created_at FROM event LIMIT 1")).scalar()
    assert created == sent == event == "2026-03-01 12:00:00.000000"
    assert SA_TIME.match(created)


@pytest.mark.sqlite_only  # a SQLite page cache setting
def test_bulk_writes_keep_a_bigger_cache_and_give_it_back(desk: Desk) -> None:
    from supportdesk.store.db import BULK_CACHE_KIB, DEFAULT_CACHE_KIB

    def cache_kib() -> int:
        with desk.db.write() as s:
            return -int(s.connection().exec_driver_sql("PRAGMA cache_size").scalar() or 0)

    assert cache_kib() == DEFAULT_CACHE_KIB
    with desk.db.bulk_writes():
        assert cache_kib() == BULK_CACHE_KIB
        with desk.db.write() as s:
            ingest_many(s, desk, [inbound_email()], historical=True)
    assert cache_kib() == DEFAULT_CACHE_KIB


@pytest.mark.sqlite_only  # the SQLite executemany path
def test_bulk_rows_leave_out_null_columns_only_where_that_stores_null() -> None:
    """Columns NULL in every row of a big batch are left out of the INSERT only when the table
    gives them no default: the stored rows are the ones binding every value gave."""
    from supportdesk.store import bulk

    md = sa.MetaData()
    table = sa.Table(
        "t",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("plain", sa.Text, nullable=True),
        sa.Column("with_default", sa.Text, nullable=True, server_default="dflt"),
        sa.Column("flag", sa.Boolean, nullable=True),
        sa.Column("at", sa.DateTime, nullable=True),
        sa.Column("word", sa.Text, nullable=True),
    )
    engine = sa.create_engine("sqlite://")
    md.create_all(engine)
    n = bulk.NULL_COLUMNS_MIN + 5
    rows = [
        {"id": i, "plain": None, "with_default": None, "flag": i % 2 == 0, "at": None, "word": "w"}
        for i in range(1, n + 1)
    ]
    rows[-1]["word"] = None  # None in some rows only: bound
    with engine.begin() as conn:
        bulk._sqlite_executemany(conn, table, rows)
        got = conn.execute(
            sa.text(
                "SELECT id, plain, with_default, flag, typeof(flag), at, word FROM t ORDER BY id"
            )
        ).all()
    assert len(got) == n
    assert all(r[1] is None and r[2] is None and r[5] is None for r in got)  # NULL, not 'dflt'
    assert [(r[3], r[4]) for r in got[:2]] == [(0, "integer"), (1, "integer")]
    assert [r[6] for r in got] == ["w"] * (n - 1) + [None]
