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
