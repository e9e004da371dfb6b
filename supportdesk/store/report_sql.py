"""The report's SQL for the tickets without events: their figures counted in the database.

Most tickets of a big desk that a report period holds never had a status change, a reply or a
rating logged as an event (seeded or imported history, the demo): for them every figure follows
from the ticket's own columns, and whether it was breached also from its ``sla_breached``
events (``BREACHED_SQL`` looks one up), so ``reports.metrics`` lets the database count them
("plain" tickets) and loads facts only for the tickets with other events. The rules are those of
``reports.metrics._TicketFacts`` with no events: a ticket solved or closed was solved at
``coalesce(solved_at, closed_at, created_at)`` (``S``) by its assignee, its only reply is
``first_response_at`` (``R``), and its status "as of" is its status once ``S`` has passed
("open" before; "new" when it is not done). ``tests/reports/test_bounded.py`` compares the
result with the old whole-history computation.

The bulk of the period (tickets solved, if at all, without a ``solved_at`` or ``closed_at``)
ranges over the covering index ``ix_ticket_report`` (migration 0010: the tickets by
``created_at`` with every column a figure reads), so no table row is read for it; a solve or a
rating dated by another column ranges over that column's index (one SELECT per column, joined by
UNION ALL). Days are counted as ranges between the instants the desk's days begin at
(``days``: one SELECT per day, joined by UNION ALL, a batch at a time).

Parameters are ``:name``; times go in and come out as the driver stores them (text on SQLite,
naive UTC ``datetime`` on PostgreSQL): ``ReportSQL.time`` and ``reads.utc`` convert.

Every query of the report is here, as text run through a ``store.reads.Run``: the full path
runs it in a SQLAlchemy session (``store.db.session_run``), the command line's quick path on a
plain ``sqlite3`` connection (``runner.quick``). This module imports nothing heavy.

Long because: every query of the report lives here once (the plain tickets' counts, the tickets
with events, the backlog, NPS), so that both paths run the same text.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from supportdesk.store.reads import Run, _ids, sqlite_utc_text, utc

DONE_SQL = "('solved', 'closed')"
DAYS_PER_QUERY = 50  # SELECTs per UNION ALL of day counts
FACT_EVENTS_CAP = 5000  # up to this many events of a fact kind, FEW_FACTS_SQL
# kinds of event that change a ticket's figures (reports.metrics.FACT_KINDS)
FACT_KINDS_SQL = "('reply', 'delivered', 'status', 'csat_rated', 'sla_breached')"
# of them, the kinds that make a ticket one with events ("not plain"): an `sla_breached` event
# changes only whether the ticket counts as breached, which BREACHED_SQL also asks of the log
# (the runner's SLA pass, and the demo since 2026-12-05 night, write one per missed target:
# ~1.1 per ticket, which made nearly every ticket one with events)
NOT_PLAIN_KINDS_SQL = "('reply', 'delivered', 'status', 'csat_rated')"
# neither spam nor merged away (reports.figures._left_out)
KEPT_SQL = "NOT (ticket.spam OR substr(ticket.reply_to_address, 1, 7) = 'merged:')"
# spam or merged away: the condition of the partial index ix_ticket_left_out (migration 0009),
# which SQLite uses only for a query that states it word for word
LEFT_OUT_SQL = "(spam OR substr(reply_to_address, 1, 7) = 'merged:')"
# kinds of event that date a figure of the period (a reply, a delivery, a status, a rating)
PERIOD_KINDS_SQL = "('reply', 'delivered', 'status', 'csat_rated')"
# the columns of a ticket with events (reports.figures._load)
FACT_COLUMNS = (
    "ticket.id, ticket.created_at, ticket.channel, ticket.priority, ticket.status, "
    "ticket.assignee_id, ticket.first_response_due_at, ticket.resolution_due_at, "
    "ticket.solved_at, ticket.closed_at, ticket.csat_score, ticket.csat_requested_at, "
    "ticket.first_response_at, ticket.spam, ticket.reply_to_address"
)
CHUNK = 1000  # ids per IN (...) list
PLAIN_SQL = (
    "NOT EXISTS (SELECT 1 FROM event WHERE event.ticket_id = ticket.id "
    f"AND event.kind IN {NOT_PLAIN_KINDS_SQL} AND event.created_at < :end)"
)


def _in(column: str) -> str:
    """``column`` in the period, up to "as of"."""
    return f"{column} >= :start AND {column} < :end AND {column} <= :as_of"


CREATED_SQL = _in("ticket.created_at")
# S in the period, one branch per column it comes from, so that each ranges over an index
_SOLVED_BRANCHES = [
    ("ticket.solved_at", _in("ticket.solved_at")),
    ("ticket.closed_at", f"ticket.solved_at IS NULL AND {_in('ticket.closed_at')}"),
    (
        "ticket.created_at",
        f"ticket.solved_at IS NULL AND ticket.closed_at IS NULL AND {CREATED_SQL}",
    ),
]
# the status, wrapped so that the bulk branch ranges over ix_ticket_report (covering), not
# ix_ticket_status_created (a table row per ticket)
_STATUS = "coalesce(ticket.status, ticket.status)"
# the first reply counts when it is not before creation and not after "as of"
_REPLIED = (
    "ticket.first_response_at IS NOT NULL AND ticket.first_response_at >= ticket.created_at "
    "AND ticket.first_response_at <= :as_of"
)
# the tickets with events (the events that change a ticket's figures, but a breach)
FACT_TICKETS_SQL = (
    f"SELECT event.ticket_id FROM event WHERE event.kind IN {NOT_PLAIN_KINDS_SQL} "
    "AND event.created_at < :end AND event.ticket_id IS NOT NULL"
)
FEW_FACTS_SQL = f"ticket.id NOT IN ({FACT_TICKETS_SQL})"  # PLAIN_SQL, when they are few
# the ticket has an event before the end of the period that makes it not plain
HAS_FACTS_SQL = (
    "EXISTS (SELECT 1 FROM event AS fact WHERE fact.ticket_id = ticket.id "
    f"AND fact.kind IN {NOT_PLAIN_KINDS_SQL} AND fact.created_at < :end)"
)
SOLVED_AT_SQL = "coalesce(ticket.solved_at, ticket.closed_at, ticket.created_at)"
_DONE_BY = f"ticket.status IN {DONE_SQL} AND {SOLVED_AT_SQL} <= :as_of"
# reports.metrics._breached for a plain ticket: a target missed by its own columns, else an
# sla_breached event by "as of" (looked up only for a ticket the columns call on time: a probe
# of ix_event_ticket_created)
BREACHED_SQL = (
    "CASE WHEN (ticket.first_response_due_at IS NOT NULL AND (CASE "
    f"WHEN {_REPLIED} THEN ticket.first_response_at WHEN {_DONE_BY} THEN {SOLVED_AT_SQL} "
    "ELSE :as_of END) > ticket.first_response_due_at) OR (ticket.resolution_due_at IS NOT NULL "
    f"AND (CASE WHEN {_DONE_BY} THEN {SOLVED_AT_SQL} ELSE :as_of END) "
    "> ticket.resolution_due_at) THEN 1 WHEN EXISTS (SELECT 1 FROM event AS breach "
    "WHERE breach.ticket_id = ticket.id AND breach.kind = 'sla_breached' "
    "AND breach.created_at <= :as_of AND breach.created_at < :end) THEN 1 ELSE 0 END"
)
# the CSAT rating of a ticket without events counts at the first of these that is set
_RATED_BRANCHES = [
    _in("ticket.csat_requested_at"),
    f"ticket.csat_requested_at IS NULL AND {_in('ticket.solved_at')}",
    f"ticket.csat_requested_at IS NULL AND ticket.solved_at IS NULL AND {_in('ticket.closed_at')}",
    "ticket.csat_requested_at IS NULL AND ticket.solved_at IS NULL AND ticket.closed_at IS NULL "
    f"AND {CREATED_SQL}",
]


# PostgreSQL: no JIT and no parallel workers for the rest of the report's transaction (see
# ReportSQL)
PG_SETTINGS_SQL = (
    "SELECT set_config('jit', 'off', true), "
    "set_config('max_parallel_workers_per_gather', '0', true)"
)
# PostgreSQL has no skip scan: SELECT DISTINCT read every ticket (a parallel seq scan, 0.2 s of
# server CPU at 1M, twice per report). These walk the index instead, one probe per value: the
# next channel, the next priority within a channel, the next assignee within a (channel,
# priority) (ix_ticket_report_by), and whether that pair has an unassigned ticket (its NULLs
# sort last: the first row of a backward walk); channel, priority and status are NOT NULL.
_NEXT = "(SELECT min(t.{col}) FROM ticket AS t WHERE {where})"
TRIPLES_PG_SQL = (
    "WITH RECURSIVE c(channel) AS (SELECT min(ticket.channel) FROM ticket UNION ALL SELECT "
    + _NEXT.format(col="channel", where="t.channel > c.channel")
    + " FROM c WHERE c.channel IS NOT NULL), p(channel, priority) AS (SELECT c.channel, "
    + _NEXT.format(col="priority", where="t.channel = c.channel")
    + " FROM c WHERE c.channel IS NOT NULL UNION ALL SELECT p.channel, "
    + _NEXT.format(col="priority", where="t.channel = p.channel AND t.priority > p.priority")
    + " FROM p WHERE p.priority IS NOT NULL), a(channel, priority, assignee_id) AS ("
    "SELECT p.channel, p.priority, "
    + _NEXT.format(col="assignee_id", where="t.channel = p.channel AND t.priority = p.priority")
    + " FROM p WHERE p.priority IS NOT NULL UNION ALL SELECT a.channel, a.priority, "
    + _NEXT.format(
        col="assignee_id",
        where="t.channel = a.channel AND t.priority = a.priority AND t.assignee_id > a.assignee_id",
    )
    + " FROM a WHERE a.assignee_id IS NOT NULL) "
    "SELECT a.channel, a.priority, a.assignee_id FROM a WHERE a.assignee_id IS NOT NULL "
    "UNION ALL SELECT p.channel, p.priority, NULL FROM p WHERE p.priority IS NOT NULL AND "
    "(SELECT t.assignee_id IS NULL FROM ticket AS t WHERE t.channel = p.channel "
    "AND t.priority = p.priority ORDER BY t.assignee_id DESC LIMIT 1)"
)
STATUSES_PG_SQL = (
    "WITH RECURSIVE s(status) AS (SELECT min(ticket.status) FROM ticket UNION ALL SELECT "
    + _NEXT.format(col="status", where="t.status > s.status")
    + " FROM s WHERE s.status IS NOT NULL) SELECT s.status FROM s WHERE s.status IS NOT NULL"
)


def solved_sql(
    columns: str, plain: str = PLAIN_SQL, branches: Sequence[tuple[str, str]] = _SOLVED_BRANCHES
) -> str:
    """The plain tickets solved in the period, with ``columns`` and their solve as ``solved``:
    one SELECT per branch, joined by UNION ALL."""
    return " UNION ALL ".join(
        f"SELECT {columns}, {at} AS solved FROM ticket WHERE {_STATUS} IN {DONE_SQL} "
        f"AND ticket.created_at < :end AND {where} AND {KEPT_SQL} AND {plain}"
        for at, where in branches
    )


def rated_sql(plain: str = PLAIN_SQL) -> str:
    """The plain tickets whose rating counts in the period: their ``csat_score``."""
    return " UNION ALL ".join(
        "SELECT ticket.csat_score FROM ticket WHERE ticket.csat_score IS NOT NULL "
        f"AND ticket.created_at < :end AND {where} AND {KEPT_SQL} AND {plain}"
        for where in _RATED_BRANCHES
    )


class ReportSQL:
    """The queries, run through ``run`` in one read transaction (one snapshot), for the period
    [start, end) and "as of"; ``dialect`` is ``sqlite`` or ``postgresql``."""

    def __init__(self, run: Run, dialect: str, start: datetime, end: datetime, as_of: datetime):
        self._run = run
        self.dialect = dialect
        self.start, self.end, self.as_of = start, end, as_of
        self.params = {"start": self.time(start), "end": self.time(end), "as_of": self.time(as_of)}

        self.plain = PLAIN_SQL  # until fact_tickets() finds the tickets with events
        self._triples: list[tuple[str, int, dict[str, Any]]] | None = None
        if dialect == "postgresql":
            # No JIT in this transaction: the report's UNION ALLs (a SELECT per day or per
            # (channel, priority, assignee)) cost past jit_above_cost at 1M tickets, and
            # compiling their ~2,000 expressions took 1.4-2.1 s of server CPU per query (in
            # each parallel worker) to save milliseconds: 4.8 -> 2.0 s for the report at 1M.
            # No parallel workers: each query is a few short index ranges, and starting two
            # workers per query cost 0.15 s of server CPU at 1M (0.50 -> 0.35 s) for no
            # shorter wall time (0.57 / 0.59 s).
            self._run(PG_SETTINGS_SQL, {})

    def fact_tickets(self, cap: int | None = None) -> list[int] | None:
        """The tickets with an event of a fact kind before the end of the period, when there
        are at most ``cap`` such events (else None). Then a plain ticket is one not in their
        list (``FEW_FACTS_SQL``: an ephemeral index of a few ids, built once per query) rather
        than one without such an event (``PLAIN_SQL``: a probe of the event index per ticket,
        0.4 µs each, every query)."""
        cap = FACT_EVENTS_CAP if cap is None else cap
        rows = self.run(f"{FACT_TICKETS_SQL} LIMIT :cap", cap=cap + 1)
        if len(rows) > cap:
            return None
        self.plain = FEW_FACTS_SQL
        return sorted({int(tid) for (tid,) in rows})

    def time(self, at: datetime) -> Any:
        if self.dialect == "sqlite":
            return sqlite_utc_text(at)
        return at.astimezone(UTC).replace(tzinfo=None)

    def run(self, sql: str, **extra: Any) -> Sequence[Sequence[Any]]:
        params = {**self.params, **extra} if extra else self.params
        return self._run(sql, params)

    def triples(self) -> list[tuple[str, int, dict[str, Any]]]:
        """One WHERE clause per (channel, priority, assignee) tickets have, with its parameters:
        the distinct triples are a skip-ahead DISTINCT over the first columns of
        ``ix_ticket_report_by`` (migration 0012), about a millisecond at 1M."""
        if self._triples is not None:
            return self._triples
        out: list[tuple[str, int, dict[str, Any]]] = []
        rows = self.run(
            TRIPLES_PG_SQL
            if self.dialect == "postgresql"
            else "SELECT DISTINCT ticket.channel, ticket.priority, ticket.assignee_id FROM ticket"
        )
        for i, (channel, priority, assignee) in enumerate(rows):
            who = (
                "ticket.assignee_id IS NULL" if assignee is None else f"ticket.assignee_id = :a{i}"
            )
            where = f"ticket.channel = :c{i} AND ticket.priority = :p{i} AND {who}"
            out.append((where, i, {f"c{i}": channel, f"p{i}": priority, f"a{i}": assignee}))
        self._triples = out
        return out

    def created(self) -> Sequence[Sequence[Any]]:
        """Plain tickets created in the period: (channel, priority, created, breached), a row
        per assignee. One SELECT per (channel, priority, assignee), joined by UNION ALL: each
        is a range of the period on ``ix_ticket_report_by`` (covering), so nothing is sorted
        (GROUP BY over the period sorted every ticket of it: 0.35 s of CPU at 1M, 30 days)."""
        parts, params = [], {}
        for where, _i, values in self.triples():
            params.update(values)
            parts.append(
                f"SELECT ticket.channel, ticket.priority, count(*), sum({BREACHED_SQL}) "
                f"FROM ticket WHERE {where} AND {CREATED_SQL} AND {KEPT_SQL} AND {self.plain} "
                "GROUP BY ticket.channel, ticket.priority, ticket.assignee_id"
            )
        return self.run(" UNION ALL ".join(parts), **params) if parts else []

    def per_day(self, where: str, column: str, days: Sequence[datetime]) -> list[int]:
        """Rows matching ``where`` per day of the period: ``column`` in [days[i], days[i + 1])
        and up to "as of". The day is the only range on ``column`` in the SQL (the planner
        ranges over one lower and one upper bound)."""
        last = self.as_of + timedelta(microseconds=1)  # the stored times are in microseconds
        spans = [
            (i, max(days[i], self.start), min(days[i + 1], self.end, last))
            for i in range(len(days) - 1)
        ]
        out = [0] * len(spans)
        spans = [(i, lo, hi) for i, lo, hi in spans if lo < hi]
        for first in range(0, len(spans), DAYS_PER_QUERY):
            parts, params = [], {"end": self.params["end"]}
            for i, lo, hi in spans[first : first + DAYS_PER_QUERY]:
                params[f"lo{i}"], params[f"hi{i}"] = self.time(lo), self.time(hi)
                parts.append(
                    f"SELECT {i} AS day, count(*) AS n FROM ticket WHERE {where} "
                    f"AND {column} >= :lo{i} AND {column} < :hi{i}"
                )
            for i, n in self._run(" UNION ALL ".join(parts), params):
                out[int(i)] = int(n)
        return out

    def created_days(self, days: Sequence[datetime]) -> list[int]:
        """Every ticket created in the period (with events or not), per day."""
        return self.per_day(KEPT_SQL, "ticket.created_at", days)

    def first_responses(self) -> Sequence[Sequence[Any]]:
        """Plain tickets created in the period and answered by "as of":
        (channel, created_at, first_response_at, assignee_id)."""
        return self.run(
            "SELECT ticket.channel, ticket.created_at, ticket.first_response_at, "
            f"ticket.assignee_id FROM ticket WHERE {CREATED_SQL} AND {_REPLIED} "
            f"AND {KEPT_SQL} AND {self.plain}"
        )

    def solved(self) -> Sequence[Sequence[Any]]:
        """Plain tickets solved in the period: (channel, priority, assignee_id, count, of them
        solved at or before creation, of them with their one reply before the solve), possibly
        several rows per key (add them up). The solves dated by ``solved_at`` or ``closed_at``
        are grouped; the bulk (solved at creation) is one range per (channel, priority,
        assignee) of ``ix_ticket_report_by``, so it is not sorted."""
        cols = (
            "ticket.channel, ticket.priority, ticket.assignee_id, ticket.created_at, "
            "ticket.first_response_at"
        )
        sums = (
            "count(*), sum(CASE WHEN {at} <= {born} THEN 1 ELSE 0 END), "
            "sum(CASE WHEN {reply} >= {born} AND {reply} <= {at} THEN 1 ELSE 0 END)"
        )
        dated = solved_sql(cols, self.plain, _SOLVED_BRANCHES[:-1])
        parts = [
            "SELECT channel, priority, assignee_id, "
            + sums.format(at="solved", born="created_at", reply="first_response_at")
            + f" FROM ({dated}) AS s GROUP BY channel, priority, assignee_id"
        ]
        params: dict[str, Any] = {}
        at, bulk = _SOLVED_BRANCHES[-1]
        for where, _i, values in self.triples():
            params.update(values)
            parts.append(
                "SELECT ticket.channel, ticket.priority, ticket.assignee_id, "
                + sums.format(at=at, born="ticket.created_at", reply="ticket.first_response_at")
                + f" FROM ticket WHERE {where} AND {_STATUS} IN {DONE_SQL} "
                f"AND ticket.created_at < :end AND {bulk} AND {KEPT_SQL} AND {self.plain} "
                "GROUP BY ticket.channel, ticket.priority, ticket.assignee_id"
            )
        return self.run(" UNION ALL ".join(parts), **params)

    def solved_later(self) -> Sequence[Sequence[Any]]:
        """Plain tickets solved in the period after their creation:
        (channel, created_at, solved at, assignee_id). Only the solves dated by ``solved_at``
        or ``closed_at`` can be (the others are solved at creation)."""
        cols = "ticket.channel, ticket.created_at, ticket.assignee_id"
        dated = solved_sql(cols, self.plain, _SOLVED_BRANCHES[:-1])
        return self.run(
            f"SELECT channel, created_at, solved, assignee_id FROM ({dated}) AS s "
            "WHERE solved > created_at"
        )

    def solved_days(self, days: Sequence[datetime]) -> list[int]:
        """Plain tickets solved in the period, per day of the solve."""
        at_creation = (
            f"{_STATUS} IN {DONE_SQL} AND ticket.solved_at IS NULL "
            f"AND ticket.closed_at IS NULL AND {KEPT_SQL} AND {self.plain}"
        )
        out = self.per_day(at_creation, "ticket.created_at", days)
        dated = " UNION ALL ".join(
            f"SELECT {at} FROM ticket WHERE ticket.status IN {DONE_SQL} "
            f"AND ticket.created_at < :end AND {where} AND {KEPT_SQL} AND {self.plain}"
            for at, where in _SOLVED_BRANCHES[:-1]
        )  # solves dated by solved_at or closed_at: as many rows as such solves
        for (at,) in self.run(dated):
            when = utc(at)
            i = bisect_right(days, when) - 1 if when is not None else -1
            if 0 <= i < len(out):
                out[i] += 1
        return out

    def csat(self) -> tuple[int, int, Sequence[Sequence[Any]]]:
        """Plain tickets: (surveys sent in the period, of them rated, [(score, ratings given in
        the period)])."""
        [(requested, rated)] = self.run(
            "SELECT count(*), count(ticket.csat_score) FROM ticket WHERE "
            f"{_in('ticket.csat_requested_at')} AND ticket.created_at < :end AND {KEPT_SQL} "
            f"AND {self.plain}"
        )
        scores = self.run(
            f"SELECT csat_score, count(*) FROM ({rated_sql(self.plain)}) AS r GROUP BY csat_score"
        )
        return int(requested or 0), int(rated or 0), scores

    def tags(self) -> tuple[Sequence[Sequence[Any]], Sequence[Sequence[Any]]]:
        """Every ticket created in the period: ([(tag, tickets)], [(assignee_id, tickets
        tagged ``complaint``)])."""
        join = (
            "FROM ticket_tag JOIN tag ON tag.id = ticket_tag.tag_id "
            "JOIN ticket ON ticket.id = ticket_tag.ticket_id "
            f"WHERE {CREATED_SQL} AND {KEPT_SQL}"
        )
        counts = self.run(f"SELECT tag.name, count(*) {join} GROUP BY tag.name")
        complaints = self.run(
            f"SELECT ticket.assignee_id, count(*) {join} AND tag.name = 'complaint' "
            "GROUP BY ticket.assignee_id"
        )
        return counts, complaints

    # -- the tickets with events (reports.figures._load), the backlog, NPS, the agents --------

    def agents(self) -> dict[Any, str]:
        """Every agent's name by id."""
        return {int(aid): name for aid, name in self.run("SELECT agent.id, agent.name FROM agent")}

    def touched(self) -> set[int]:
        """With the tickets created in the period, every ticket a figure of the period can
        count (a superset; ``reports.figures.compute`` filters).

        Solved, closed or surveyed in the period (seeded tickets date their solve and rating by
        these columns); a status change, rating, reply or delivery in the period; an outbox
        row sent in it (a reply written before the period and delivered in it counts there).
        """
        ids: set[int] = set()
        for column in ("ticket.solved_at", "ticket.closed_at", "ticket.csat_requested_at"):
            ids.update(
                tid
                for (tid,) in self.run(
                    f"SELECT ticket.id FROM ticket WHERE {column} >= :start AND {column} < :end"
                )
            )
        for sql in (
            f"SELECT event.ticket_id FROM event WHERE event.kind IN {PERIOD_KINDS_SQL} "
            "AND event.created_at >= :start AND event.created_at < :end",
            "SELECT outbox.ticket_id FROM outbox WHERE outbox.sent_at >= :start "
            "AND outbox.sent_at < :end AND outbox.state = 'sent'",
        ):
            ids.update(tid for (tid,) in self.run(sql) if tid is not None)
        return ids

    def fact_groups(
        self, touched: set[int], with_facts: list[int] | None
    ) -> list[tuple[str, dict[str, Any]]]:
        """The tickets with events as WHERE clauses (with their parameters): those created in
        the period (one range, or the ``with_facts`` tickets in chunks when they are listed),
        then those ``touched`` and created before it, in chunks of ids."""
        period = f"ticket.created_at >= :start AND ticket.created_at < :end AND {KEPT_SQL}"
        earlier = f"ticket.created_at < :start AND {KEPT_SQL}"
        groups: list[tuple[str, dict[str, Any]]] = []
        if with_facts is None:
            groups.append((f"{period} AND {HAS_FACTS_SQL}", {}))
            earlier += f" AND {HAS_FACTS_SQL}"
            wanted = sorted(touched)
        else:
            for i in range(0, len(with_facts), CHUNK):
                ids, params = _ids("t", with_facts[i : i + CHUNK])
                groups.append((f"ticket.id IN ({ids}) AND {period}", params))
            wanted = sorted(touched.intersection(with_facts))
        for i in range(0, len(wanted), CHUNK):
            ids, params = _ids("t", wanted[i : i + CHUNK])
            groups.append((f"ticket.id IN ({ids}) AND {earlier}", params))
        return groups

    def fact_rows(self, where: str, params: dict[str, Any]) -> Sequence[Sequence[Any]]:
        """The tickets of a ``fact_groups`` clause: ``FACT_COLUMNS``."""
        return self.run(f"SELECT {FACT_COLUMNS} FROM ticket WHERE {where}", **params)

    def fact_events(self, where: str, params: dict[str, Any]) -> Sequence[Sequence[Any]]:
        """Their events of a fact kind before the end of the period, in the order of the log:
        (id, ticket_id, kind, agent, data, created_at)."""
        return self.run(
            "SELECT event.id, event.ticket_id, event.kind, event.agent, event.data, "
            "event.created_at FROM event WHERE event.ticket_id IN "
            f"(SELECT ticket.id FROM ticket WHERE {where}) AND event.kind IN {FACT_KINDS_SQL} "
            "AND event.created_at < :end ORDER BY event.created_at, event.id",
            **params,
        )

    def outbox_rows(self, ids: Sequence[int]) -> Sequence[Sequence[Any]]:
        """(id, state, sent_at) of these outbox rows."""
        names, params = _ids("o", ids)
        return self.run(
            f"SELECT outbox.id, outbox.state, outbox.sent_at FROM outbox WHERE outbox.id IN ({names})",
            **params,
        )

    def nps_events(self) -> Sequence[Sequence[Any]]:
        """NPS surveys and scores of the period: (kind, customer_id, data, created_at)."""
        return self.run(
            "SELECT event.kind, event.customer_id, event.data, event.created_at FROM event "
            "WHERE event.kind IN ('nps_requested', 'nps_rated') "
            "AND event.created_at >= :start AND event.created_at < :end"
        )

    def statuses(self) -> list[str]:
        """The statuses tickets have (a skip-ahead DISTINCT on an index; on PostgreSQL a
        recursive skip scan of ``ix_ticket_status_created``)."""
        if self.dialect == "postgresql":
            return [st for (st,) in self.run(STATUSES_PG_SQL)]
        return [st for (st,) in self.run("SELECT DISTINCT ticket.status FROM ticket")]

    def backlog_count(self, status: str, younger: datetime | None) -> int:
        """Tickets of ``status`` created by "as of" (and after ``younger``): a range of
        ``ix_ticket_status_created``, counted without reading a row."""
        sql = (
            "SELECT count(*) FROM ticket WHERE ticket.status = :status "
            "AND ticket.created_at <= :as_of AND ticket.created_at < :end"
        )
        if younger is None:
            return int(self.run(sql, status=status)[0][0])
        sql += " AND ticket.created_at > :younger"
        return int(self.run(sql, status=status, younger=self.time(younger))[0][0])

    # created_at wrapped so that neither SQLite nor PostgreSQL ranges over its index (every
    # ticket is older than "as of" in a report that ends today) instead of the ones chosen
    _BORN = (
        "coalesce(ticket.created_at, ticket.created_at) <= :as_of "
        "AND coalesce(ticket.created_at, ticket.created_at) < :end"
    )

    def backlog_left_out(self, limits: Sequence[datetime]) -> Sequence[Any]:
        """Active tickets spam or merged away, created by "as of": (all of them, then those
        created after each of ``limits``), through the partial index ix_ticket_left_out (whose
        condition ``LEFT_OUT_SQL`` is, verbatim)."""
        sums = "".join(
            f", sum(CASE WHEN ticket.created_at > :y{i} THEN 1 ELSE 0 END)"
            for i in range(len(limits))
        )
        params = {f"y{i}": self.time(at) for i, at in enumerate(limits)}
        return self.run(
            f"SELECT count(*){sums} FROM ticket WHERE ticket.status NOT IN {DONE_SQL} "
            f"AND {self._BORN} AND {LEFT_OUT_SQL}",
            **params,
        )[0]

    def backlog_late_solves(
        self, labels: Sequence[tuple[str, datetime]], last: str
    ) -> list[tuple[str, int]]:
        """Tickets done but solved (else closed) after "as of", created by it and kept, counted
        per age: the first of ``labels`` (label, created after) that fits, else ``last``. A few,
        through the ``solved_at`` and ``closed_at`` indexes."""
        params = {f"y{i}": self.time(at) for i, (_label, at) in enumerate(labels)}
        whens = " ".join(
            f"WHEN ticket.created_at > :y{i} THEN '{label}'"
            for i, (label, _at) in enumerate(labels)
        )
        out: list[tuple[str, int]] = []
        for later in (
            "ticket.solved_at > :as_of",
            # (solved_at wrapped: its NULLs are most of the desk, closed_at's range is short)
            "ticket.closed_at > :as_of AND coalesce(ticket.solved_at, ticket.solved_at) IS NULL",
        ):
            out += [
                (str(label), int(n))
                for label, n in self.run(
                    f"SELECT CASE {whens} ELSE '{last}' END, count(*) FROM ticket "
                    f"WHERE ticket.status IN {DONE_SQL} AND {self._BORN} AND {KEPT_SQL} "
                    f"AND {later} GROUP BY 1",
                    **params,
                )
            ]
        return out

    def status_history(self) -> Sequence[Sequence[Any]]:
        """The status events before the end of the period of the tickets created by "as of":
        (ticket_id, event id, at, data, created_at, status, solved_at, closed_at, spam,
        reply_to_address)."""
        return self.run(
            "SELECT event.ticket_id, event.id, event.created_at, event.data, ticket.created_at, "
            "ticket.status, ticket.solved_at, ticket.closed_at, ticket.spam, "
            "ticket.reply_to_address FROM event JOIN ticket ON ticket.id = event.ticket_id "
            "WHERE event.kind = 'status' AND event.created_at < :end "
            "AND ticket.created_at <= :as_of AND ticket.created_at < :end"
        )
