"""``Database.analyze`` after a bulk write: on PostgreSQL only the tables never analyzed or
grown by a tenth since, so an import into a big desk does not analyze what it barely changed."""

from __future__ import annotations

from typing import Any

import pytest

from supportdesk.store.db import PG_GROWN_TABLES
from tests.conftest import TEST_BACKEND
from tests.factories import inbound_email, ingest

pytestmark = pytest.mark.skipif(TEST_BACKEND != "postgres", reason="PostgreSQL's statistics")


def _grown(desk: Any) -> set[str]:
    with desk.db.read() as s:
        return {r[0] for r in s.connection().exec_driver_sql(PG_GROWN_TABLES)}


def _analyzed(desk: Any, table: str) -> Any:
    with desk.db.read() as s:
        return (
            s.connection()
            .exec_driver_sql(
                "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = %(t)s", {"t": table}
            )
            .scalar()
        )


def test_only_tables_never_analyzed_or_grown_are_analyzed(desk: Any) -> None:
    for i in range(30):
        ingest(desk, inbound_email(subject=f"printer {i}", text="it is broken " * 50))
    grown = _grown(desk)
    assert {"message", "ticket", "customer"} <= grown
    desk.db.analyze()
    first = _analyzed(desk, "message")
    assert first is not None
    assert not _grown(desk)  # analyzed: nothing is left to do
    desk.db.analyze()
    assert _analyzed(desk, "message") == first  # not analyzed again: it did not grow
    for i in range(60):  # more than a tenth more pages
        ingest(desk, inbound_email(subject=f"toner {i}", text="it is empty " * 50))
    assert "message" in _grown(desk)
    desk.db.analyze()
    assert _analyzed(desk, "message") > first


def _with_statistics(desk: Any, table: str) -> set[str]:
    with desk.db.read() as s:
        rows = s.connection().exec_driver_sql(
            "SELECT attname FROM pg_stats WHERE schemaname = current_schema() "
            "AND tablename = %(t)s",
            {"t": table},
        )
        return {r[0] for r in rows}


def test_the_free_text_no_plan_reads_is_left_out(desk: Any) -> None:
    """The closing ANALYZE takes the columns queries filter, join or sort on (the search
    documents' ``tsv``, the messages' keys) and leaves out the free text, which was most of its
    cost; a later ANALYZE of its own (autovacuum's) takes them all."""
    for i in range(30):
        ingest(desk, inbound_email(subject=f"printer {i}", text="it is broken " * 50))
    desk.db.analyze()
    message = _with_statistics(desk, "message")
    assert {"id", "ticket_id", "dedupe_key", "message_id", "customer_id", "created_at"} <= message
    assert not {"text", "subject", "quoted_text", "author_address"} & message
    search = _with_statistics(desk, "search_doc")
    assert {"rowid", "tsv"} <= search
    assert not {"title", "body", "extra"} & search
    ticket = _with_statistics(desk, "ticket")
    assert {"status", "priority_rank", "created_at", "due_at", "reply_to_address"} <= ticket
    assert "subject" not in ticket
    with desk.db.write() as s:
        s.connection().exec_driver_sql("ANALYZE message")
    assert {"text", "subject"} <= _with_statistics(desk, "message")
