"""Migration 0016: fewer index entries per ticket an import writes.

The ticket's indexes that a wider index starts with (and two no query needs) are gone; the ones
on columns a new ticket leaves NULL (and ``event.batch``) hold only the rows where the column is
set. On SQLite and PostgreSQL alike, with a downgrade that puts them back. And the readers of the
partial indexes still get them: a partial index serves a query only when the planner proves its
condition from the query's own terms, so a reader written as ``col IS NULL OR ...`` or through a
function of the column would read every ticket instead (the runner's snooze wake-up every pass,
the report's solved/closed/surveyed ranges).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from supportdesk.core.locations import database_path
from supportdesk.store.db import Database, sqlite_url
from supportdesk.store.migrate import current_revision, downgrade, upgrade_if_needed

M0016 = importlib.import_module("supportdesk.store.migrations.versions.0016_bulk_write_indexes")
DROPPED = [name for name, _t, _c in M0016.DROPPED]
PARTIAL = [name for name, _t, _c in M0016.PARTIAL]


def _indexes(db: Database) -> dict[str, str]:
    """Index name -> its definition, for the ticket and event tables."""
    with db.read_engine.connect() as conn:
        if db.dialect == "sqlite":
            rows = conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                "AND tbl_name IN ('ticket', 'event') AND sql IS NOT NULL"
            ).all()
        else:
            rows = conn.exec_driver_sql(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                "AND tablename IN ('ticket', 'event')"
            ).all()
    return {str(name): str(sql) for name, sql in rows}


@pytest.fixture(params=["sqlite", "postgres"])
def db_at_0015(request: pytest.FixtureRequest, home: Path) -> Iterator[Database]:
    """A database at migration 0015 with a ticket, on SQLite and on a real PostgreSQL."""
    if request.param == "sqlite":
        home.mkdir(exist_ok=True)
        db = Database(sqlite_url(database_path(home)), home)
    else:
        db = Database(str(request.getfixturevalue("pg_empty_url")))
    upgrade_if_needed(db, "0015")
    t = "2026-01-01 10:00:00"
    with db.write_engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO customer (id, name, company, phone, language, notes, csat_opt_out,"
                " created_at, updated_at) VALUES (1, 'Пётр', '', '', 'ru', '', :f, :t, :t)"
            ),
            {"f": False, "t": t},
        )
        conn.execute(
            sa.text(
                "INSERT INTO ticket (id, subject, status, priority, priority_rank, priority_locked,"
                ' channel, kind, customer_id, "group", created_at, updated_at, solved_at,'
                " sla_paused_seconds, sla_breached, message_count, ack_sent, reply_to_address,"
                " spam) VALUES (7, 'Принтер', 'solved', 'high', 2, :f, 'support', 'email', 1,"
                " 'billing', :t, :t, :t, 0, :f, 1, :f, 'petr@example.ru', :f)"
            ),
            {"f": False, "t": t},
        )
    yield db
    db.dispose()


@pytest.mark.sqlite_only  # picks its backends itself
def test_upgrade_and_downgrade_on_both_backends(db_at_0015: Database) -> None:
    db = db_at_0015
    before = _indexes(db)
    assert set(DROPPED) | set(PARTIAL) <= set(before)
    assert not any("NOT NULL" in before[name].upper() for name in PARTIAL)

    upgrade_if_needed(db, "0016")
    assert current_revision(db) == "0016"
    after = _indexes(db)
    assert not set(DROPPED) & set(after)
    for name, _table, column in M0016.PARTIAL:
        assert f'"{column}" IS NOT NULL' in after[name] or f"{column} IS NOT NULL" in after[name], (
            after[name]
        )
    # the indexes that took the dropped ones' readers are all still there
    for wider in ("ix_ticket_status_created", "ix_ticket_status_due", "ix_ticket_queue",
                  "ix_ticket_report_by", "ix_ticket_report"):  # fmt: skip
        assert wider in after
    with db.read_engine.connect() as conn:
        got = conn.execute(sa.text('SELECT subject, "group" FROM ticket WHERE id = 7')).one()
        assert tuple(got) == ("Принтер", "billing")

    downgrade(db, "0015")
    assert current_revision(db) == "0015"
    again = _indexes(db)
    assert set(again) == set(before)
    assert not any("NOT NULL" in again[name].upper() for name in PARTIAL)

    assert upgrade_if_needed(db)  # and up to head once more
    assert not set(DROPPED) & set(_indexes(db))


# ---- the partial indexes' readers still get them ------------------------------------------

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _fill(desk: Any) -> dict[str, Any]:
    """Synthetic tickets, a few of them snoozed, solved, closed, surveyed, grouped, assigned,
    and a few events in an undo batch; then the statistics the planner goes by."""
    from supportdesk.demo.build import add_synthetic
    from supportdesk.store.models import Agent

    add_synthetic(desk, 3000, now=NOW)
    with desk.db.write() as s:
        s.add(Agent(name="ann"))
    at = (NOW - timedelta(days=3)).replace(tzinfo=None)
    with desk.db.write() as s:
        conn = s.connection()
        agent = conn.execute(sa.text("SELECT id FROM agent WHERE name = 'ann'")).scalar()
        conn.execute(
            sa.text(
                "UPDATE ticket SET snoozed_until = :at, solved_at = :at, closed_at = :at, "
                'csat_requested_at = :at, "group" = :g, assignee_id = :a WHERE id % 150 = 0'
            ),
            {"at": at, "g": "billing", "a": agent},
        )
        conn.execute(sa.text("UPDATE event SET batch = :b WHERE id % 200 = 0"), {"b": "b1"})
    desk.db.analyze()
    desk.db.dispose()  # SQLite: connections opened before ANALYZE plan with the old statistics
    return {"at": at, "a": agent}


def _plan(desk: Any, sql: str, params: dict[str, Any]) -> str:
    with desk.db.read() as s:
        conn = s.connection()
        if desk.db.dialect == "sqlite":
            rows = conn.execute(sa.text("EXPLAIN QUERY PLAN " + sql), params).all()
            return "\n".join(str(r[-1]) for r in rows)
        return "\n".join(str(r[0]) for r in conn.execute(sa.text("EXPLAIN " + sql), params))


# (reader, its SQL, the index it must get): the shapes the code's queries have
READERS = [
    (  # tickets.snooze: the runner wakes the tickets whose snooze ran out, every pass
        "snooze wake-up",
        "SELECT ticket.id FROM ticket WHERE ticket.snoozed_until IS NOT NULL "
        "AND ticket.snoozed_until <= :now",
        "ix_ticket_snoozed_until",
    ),
    (  # store.tally: the snoozed tickets are counted on their own
        "tally's snoozed tickets",
        "SELECT count(*) FROM ticket WHERE ticket.id IN (SELECT ticket.id FROM ticket "
        "WHERE ticket.snoozed_until IS NOT NULL)",
        "ix_ticket_snoozed_until",
    ),
    (  # store.report_sql.ReportSQL.touched, one range per column
        "report: solved in the period",
        "SELECT ticket.id FROM ticket WHERE ticket.solved_at >= :start AND ticket.solved_at < :now",
        "ix_ticket_solved_at",
    ),
    (
        "report: closed in the period",
        "SELECT ticket.id FROM ticket WHERE ticket.closed_at >= :start AND ticket.closed_at < :now",
        "ix_ticket_closed_at",
    ),
    (
        "report: surveyed in the period",
        "SELECT ticket.id FROM ticket WHERE ticket.csat_requested_at >= :start "
        "AND ticket.csat_requested_at < :now",
        "ix_ticket_csat_requested_at",
    ),
    (  # replies.nps: the tickets solved long enough ago, newest first
        "NPS survey due",
        "SELECT ticket.id FROM ticket WHERE ticket.status IN ('solved', 'closed') "
        "AND ticket.solved_at <= :now AND ticket.solved_at > :start ORDER BY ticket.solved_at DESC",
        "ix_ticket_solved_at",
    ),
    (  # automation.routing: an agent's open load; and the foreign key's check on agent delete
        "agent's open tickets",
        "SELECT ticket.assignee_id, count(*) FROM ticket WHERE ticket.assignee_id IN (:a) "
        "AND ticket.status IN ('new', 'open') GROUP BY ticket.assignee_id",
        "ix_ticket_assignee_id",
    ),
    (  # people.groups: a group's tickets (remove_group), open by group (list_groups)
        "a group's tickets",
        'SELECT count(*) FROM ticket WHERE ticket."group" = :g',
        "ix_ticket_group",
    ),
    (
        "open tickets by group",
        "SELECT ticket.\"group\", count(*) FROM ticket WHERE ticket.status IN ('new', 'open', "
        '\'pending\') AND ticket."group" IS NOT NULL GROUP BY ticket."group"',
        "ix_ticket_group",
    ),
    (  # actions.journal: an undo reads its batch's events
        "an undo batch",
        "SELECT event.id FROM event WHERE event.batch = :b",
        "ix_event_batch",
    ),
]


def test_the_readers_of_the_partial_indexes_get_them(desk: Any) -> None:
    got = _fill(desk)
    params = {"now": NOW.replace(tzinfo=None), "start": got["at"] - timedelta(days=30),
              "a": got["a"], "g": "billing", "b": "b1"}  # fmt: skip
    wrong = []
    for name, sql, index in READERS:
        plan = _plan(desk, sql, {k: v for k, v in params.items() if f":{k}" in sql})
        # (SQLite: no walk of the whole table; PostgreSQL may still hash-join a small table)
        full = [line for line in plan.splitlines() if line.strip() in ("SCAN ticket", "SCAN event")]
        if index not in plan or full:
            wrong.append(f"{name}: {plan}")
    assert not wrong, "\n".join(wrong)
