"""The report's plans on PostgreSQL (issue 21: the 30-day report at 1M tickets cost 6.6-7.0 s
of server CPU, not proportional to the period).

* JIT and parallel workers are off for the report's transaction only: its UNION ALLs (a SELECT
  per day or per (channel, priority, assignee)) cost past ``jit_above_cost`` on a big desk, and
  compiling them cost seconds of server CPU per query; two workers per query cost more CPU than
  the short index ranges they split.
* The period's counts are index-only scans of the covering indexes (migration 0014 adds the
  ticket id to them, which the "plain" test reads), once the visibility map is set.
* The distinct (channel, priority, assignee) triples and statuses are recursive skip scans of
  the indexes, not a scan of every ticket (PostgreSQL has no skip scan for SELECT DISTINCT), and
  they are the same as SELECT DISTINCT's, unassigned tickets included.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from supportdesk.reports import metrics
from supportdesk.store.db import session_run
from supportdesk.store.report_sql import STATUSES_PG_SQL, TRIPLES_PG_SQL, ReportSQL
from tests.conftest import TEST_BACKEND

pytestmark = pytest.mark.skipif(TEST_BACKEND != "postgres", reason="PostgreSQL's plans")

NOW = datetime(2026, 12, 10, tzinfo=UTC)
COLUMNS = (
    "subject, status, priority, priority_rank, priority_locked, channel, kind, customer_id, "
    'assignee_id, "group", created_at, updated_at, first_response_at, solved_at, closed_at, '
    "first_response_due_at, resolution_due_at, sla_paused_seconds, sla_breached, message_count, "
    "ack_sent, csat_score, reply_to_address, spam"
)


def _fill(desk: Any, copies: int) -> None:
    """A demo history, some of it assigned, then ``copies`` more tickets like its first
    (server-side), analyzed: the planner's choices follow the statistics."""
    from supportdesk.demo.build import add_synthetic
    from supportdesk.store.models import Agent

    add_synthetic(desk, 120, now=NOW)
    with desk.db.write() as s:
        s.add(Agent(name="ann"))
        s.add(Agent(name="ben"))
    with desk.db.write() as s:
        conn = s.connection()
        agents = [a for (a,) in conn.exec_driver_sql("SELECT id FROM agent ORDER BY id")]
        conn.exec_driver_sql(
            "UPDATE ticket SET assignee_id = %(a)s WHERE id %% 7 = 0", {"a": agents[0]}
        )
        conn.exec_driver_sql(
            "UPDATE ticket SET assignee_id = %(a)s, status = 'pending' WHERE id %% 11 = 0",
            {"a": agents[-1]},
        )
        if copies:  # like the first ticket, spread over the 90 days before NOW
            made = {
                "created_at": f"%(now)s - g * interval '{90 * 86400 // copies} seconds'",
                "status": "(ARRAY['solved', 'open', 'closed'])[1 + g %% 3]",
                "channel": "(ARRAY['email', 'chat'])[1 + g %% 2]",
                "priority": "(ARRAY['low', 'normal', 'high', 'urgent'])[1 + g %% 4]",
                "assignee_id": "NULL",
                "solved_at": "NULL",
                "closed_at": "NULL",
                "spam": "false",
            }
            picked = ", ".join(made.get(c, f"t.{c}") for c in COLUMNS.split(", "))
            conn.exec_driver_sql(
                f"INSERT INTO ticket ({COLUMNS}) SELECT {picked} FROM ticket AS t, "
                f"generate_series(1, {copies}) AS g WHERE t.id = (SELECT min(id) FROM ticket)",
                {"now": NOW.replace(tzinfo=None)},
            )
        conn.exec_driver_sql("ANALYZE ticket")


def _report_sql(run: Any) -> ReportSQL:
    return ReportSQL(run, "postgresql", NOW - timedelta(days=30), NOW, NOW)


def test_the_skip_scans_find_what_select_distinct_finds(desk: Any) -> None:
    _fill(desk, 0)
    with desk.db.read() as s:
        run = session_run(s)
        sql = _report_sql(run)
        triples = {tuple(v.values()) for _w, _i, v in sql.triples()}
        want = set(run("SELECT DISTINCT channel, priority, assignee_id FROM ticket", {}))
        statuses = sql.statuses()
        want_statuses = {st for (st,) in run("SELECT DISTINCT status FROM ticket", {})}
    assert triples == {tuple(r) for r in want}
    assert any(a is None for _c, _p, a in triples) and any(a is not None for _c, _p, a in triples)
    assert len(statuses) == len(want_statuses) and set(statuses) == want_statuses
    assert "pending" in want_statuses


def _plan(desk: Any, sql: str) -> str:
    with desk.db.read() as s:
        run = session_run(s)
        return "\n".join(r[0] for r in run("EXPLAIN " + sql, {}))


def test_the_skip_scans_read_the_indexes_not_every_ticket(desk: Any) -> None:
    _fill(desk, 20000)
    for sql in (TRIPLES_PG_SQL, STATUSES_PG_SQL):
        plan = _plan(desk, sql)
        assert "Seq Scan on ticket" not in plan, plan
        assert "Aggregate" not in plan and "Unique" not in plan, plan


def test_jit_and_parallel_workers_are_off_for_the_report_only(desk: Any) -> None:
    settings = "SELECT current_setting('jit'), current_setting('max_parallel_workers_per_gather')"
    seen: list[tuple[str, str]] = []
    with desk.db.read() as s:
        run = session_run(s)
        default = tuple(run(settings, {})[0])

        def spy(sql: str, params: dict[str, Any]) -> Any:
            seen.append(tuple(run(settings, {})[0]))
            return run(sql, params)

        _report_sql(spy).statuses()
    assert seen[-1] == ("off", "0") and default != ("off", "0")
    metrics.report(desk, now=NOW)
    with desk.db.read() as s:
        assert tuple(session_run(s)(settings, {})[0]) == default


def _vacuum(desk: Any) -> None:
    """Set the visibility map, as autovacuum does on a desk that has grown (an index-only scan
    reads the table for a page not marked all-visible). The test server commits asynchronously,
    and VACUUM marks a page all-visible only once its inserts' commits are flushed: CHECKPOINT
    first."""
    with desk.db.write_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.exec_driver_sql("CHECKPOINT")
        c.exec_driver_sql("VACUUM ANALYZE ticket")


def _report_plans(desk: Any) -> dict[str, str]:
    """EXPLAIN of each query the plain counts run (created, solved, per day), by its method."""
    plans: dict[str, str] = {}
    with desk.db.read() as s:
        run = session_run(s)
        sql = _report_sql(run)
        sql.fact_tickets()
        for name, call in (
            ("created", sql.created),
            ("solved", sql.solved),
            ("created_days", lambda: sql.created_days(_days())),
            ("solved_days", lambda: sql.solved_days(_days())),
        ):
            seen: list[tuple[str, dict[str, Any]]] = []

            def spy(q: str, params: dict[str, Any], seen: Any = seen) -> Any:
                seen.append((q, params))
                return run(q, params)

            sql._run = spy
            call()
            q, params = max(seen, key=lambda qp: len(qp[0]))  # the UNION ALL
            plans[name] = "\n".join(r[0] for r in run("EXPLAIN " + q, params))
    return plans


def _days() -> list[datetime]:
    return [NOW - timedelta(days=30 - i) for i in range(31)]


def test_the_period_counts_are_index_only_scans(desk: Any) -> None:
    """Migration 0014: the covering indexes carry the ticket id, which the "plain" test reads,
    so the counts of the period never read a table row."""
    _fill(desk, 20000)
    _vacuum(desk)
    plans = _report_plans(desk)
    for name in ("created", "solved"):
        assert "Index Only Scan using ix_ticket_report_by on ticket" in plans[name], plans[name]
    for name in ("created_days", "solved_days"):
        assert "Index Only Scan using ix_ticket_report on ticket" in plans[name], plans[name]
    for name, plan in plans.items():
        assert "Seq Scan on ticket" not in plan and "Heap Scan on ticket" not in plan, (name, plan)
        for index in ("ix_ticket_created_at", "ix_ticket_report"):  # (the few solves dated by
            assert f"Index Scan using {index}" not in plan, (name, plan)  # solved_at read rows)
