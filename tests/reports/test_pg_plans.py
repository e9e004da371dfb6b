"""The report's plans on PostgreSQL (issue 21: the 30-day report at 1M tickets cost 6.6-7.0 s
of server CPU, not proportional to the period).

* JIT is off for the report's transaction only: its UNION ALLs (a SELECT per day or per
  (channel, priority, assignee)) cost past ``jit_above_cost`` on a big desk, and compiling them
  cost seconds of server CPU per query.
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
        if copies:  # the first ticket again, a minute earlier each time
            picked = ", ".join(
                "t.created_at - g * interval '1 minute'" if c == "created_at" else f"t.{c}"
                for c in COLUMNS.split(", ")
            )
            conn.exec_driver_sql(
                f"INSERT INTO ticket ({COLUMNS}) SELECT {picked} FROM ticket AS t, "
                f"generate_series(1, {copies}) AS g WHERE t.id = (SELECT min(id) FROM ticket)"
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


def test_jit_is_off_for_the_report_only(desk: Any) -> None:
    seen: list[str] = []
    with desk.db.read() as s:
        run = session_run(s)
        default = run("SELECT current_setting('jit')", {})[0][0]

        def spy(sql: str, params: dict[str, Any]) -> Any:
            seen.append(run("SELECT current_setting('jit')", {})[0][0])
            return run(sql, params)

        _report_sql(spy).statuses()
    assert seen[-1] == "off"
    metrics.report(desk, now=NOW)
    with desk.db.read() as s:
        assert session_run(s)("SELECT current_setting('jit')", {})[0][0] == default
