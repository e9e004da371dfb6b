"""The report's SQL for the tickets without events: their figures counted in the database.

Most tickets of a big desk that a report period holds never had a status change, a reply, a
rating or a breach logged as an event (seeded or imported history, the demo): for them every
figure follows from the ticket's own columns, so ``reports.metrics`` lets the database count
them ("plain" tickets) and loads facts only for the tickets with events. The rules are those of
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
naive UTC ``datetime`` on PostgreSQL): ``bind_time`` and ``reads.utc`` convert.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from supportdesk.store.models import sqlite_utc_text
from supportdesk.store.reads import utc

DONE_SQL = "('solved', 'closed')"
DAYS_PER_QUERY = 50  # SELECTs per UNION ALL of day counts
FACT_EVENTS_CAP = 5000  # up to this many events of a fact kind, FEW_FACTS_SQL
# kinds of event that change a ticket's figures (reports.metrics.FACT_KINDS)
FACT_KINDS_SQL = "('reply', 'delivered', 'status', 'csat_rated', 'sla_breached')"
# neither spam nor merged away (reports.metrics._left_out)
KEPT_SQL = "NOT (ticket.spam OR substr(ticket.reply_to_address, 1, 7) = 'merged:')"
PLAIN_SQL = (
    "NOT EXISTS (SELECT 1 FROM event WHERE event.ticket_id = ticket.id "
    f"AND event.kind IN {FACT_KINDS_SQL} AND event.created_at < :end)"
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
# the tickets of the events that change a ticket's figures
FACT_TICKETS_SQL = (
    f"SELECT event.ticket_id FROM event WHERE event.kind IN {FACT_KINDS_SQL} "
    "AND event.created_at < :end AND event.ticket_id IS NOT NULL"
)
FEW_FACTS_SQL = f"ticket.id NOT IN ({FACT_TICKETS_SQL})"  # PLAIN_SQL, when they are few
SOLVED_AT_SQL = "coalesce(ticket.solved_at, ticket.closed_at, ticket.created_at)"
_DONE_BY = f"ticket.status IN {DONE_SQL} AND {SOLVED_AT_SQL} <= :as_of"
# reports.metrics._breached for a ticket without events
BREACHED_SQL = (
    "CASE WHEN (ticket.first_response_due_at IS NOT NULL AND (CASE "
    f"WHEN {_REPLIED} THEN ticket.first_response_at WHEN {_DONE_BY} THEN {SOLVED_AT_SQL} "
    "ELSE :as_of END) > ticket.first_response_due_at) OR (ticket.resolution_due_at IS NOT NULL "
    f"AND (CASE WHEN {_DONE_BY} THEN {SOLVED_AT_SQL} ELSE :as_of END) "
    "> ticket.resolution_due_at) THEN 1 ELSE 0 END"
)
# the CSAT rating of a ticket without events counts at the first of these that is set
_RATED_BRANCHES = [
    _in("ticket.csat_requested_at"),
    f"ticket.csat_requested_at IS NULL AND {_in('ticket.solved_at')}",
    f"ticket.csat_requested_at IS NULL AND ticket.solved_at IS NULL AND {_in('ticket.closed_at')}",
    "ticket.csat_requested_at IS NULL AND ticket.solved_at IS NULL AND ticket.closed_at IS NULL "
    f"AND {CREATED_SQL}",
]


def solved_sql(columns: str, plain: str = PLAIN_SQL) -> str:
    """The plain tickets solved in the period, with ``columns`` and their solve as ``solved``:
    one SELECT per branch, joined by UNION ALL."""
    return " UNION ALL ".join(
        f"SELECT {columns}, {at} AS solved FROM ticket WHERE {_STATUS} IN {DONE_SQL} "
        f"AND ticket.created_at < :end AND {where} AND {KEPT_SQL} AND {plain}"
        for at, where in _SOLVED_BRANCHES
    )


def rated_sql(plain: str = PLAIN_SQL) -> str:
    """The plain tickets whose rating counts in the period: their ``csat_score``."""
    return " UNION ALL ".join(
        "SELECT ticket.csat_score FROM ticket WHERE ticket.csat_score IS NOT NULL "
        f"AND ticket.created_at < :end AND {where} AND {KEPT_SQL} AND {plain}"
        for where in _RATED_BRANCHES
    )


class ReportSQL:
    """The queries, run in one read session (one snapshot), for the period [start, end) and
    "as of"."""

    def __init__(self, session: Session, start: datetime, end: datetime, as_of: datetime):
        self.session = session
        self.dialect = session.get_bind().dialect.name
        self.start, self.end, self.as_of = start, end, as_of
        self.params = {"start": self.time(start), "end": self.time(end), "as_of": self.time(as_of)}

        self.plain = PLAIN_SQL  # until fact_tickets() finds the tickets with events

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
        return self.session.connection().execute(sa.text(sql), params).all()

    def created(self) -> Sequence[Sequence[Any]]:
        """Plain tickets created in the period: (channel, priority, created, breached)."""
        return self.run(
            f"SELECT ticket.channel, ticket.priority, count(*), sum({BREACHED_SQL}) FROM ticket "
            f"WHERE {CREATED_SQL} AND {KEPT_SQL} AND {self.plain} "
            "GROUP BY ticket.channel, ticket.priority"
        )

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
            rows = self.session.connection().execute(sa.text(" UNION ALL ".join(parts)), params)
            for i, n in rows.all():
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
        solved at or before creation, of them with their one reply before the solve)."""
        cols = (
            "ticket.channel, ticket.priority, ticket.assignee_id, ticket.created_at, "
            "ticket.first_response_at"
        )
        return self.run(
            "SELECT channel, priority, assignee_id, count(*), "
            "sum(CASE WHEN solved <= created_at THEN 1 ELSE 0 END), "
            "sum(CASE WHEN first_response_at >= created_at AND first_response_at <= solved "
            f"THEN 1 ELSE 0 END) FROM ({solved_sql(cols, self.plain)}) AS s "
            "GROUP BY channel, priority, assignee_id"
        )

    def solved_later(self) -> Sequence[Sequence[Any]]:
        """Plain tickets solved in the period after their creation:
        (channel, created_at, solved at, assignee_id)."""
        cols = "ticket.channel, ticket.created_at, ticket.assignee_id"
        return self.run(
            f"SELECT channel, created_at, solved, assignee_id FROM ({solved_sql(cols, self.plain)}) AS s "
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
