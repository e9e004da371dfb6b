"""Support metrics for the full path (the typer command, the console's dashboard, tests):
``report`` runs ``reports.figures.compute`` (every figure and its definition are there) in a
SQLAlchemy read session over the same SQL the command line's quick path runs; and
``export_tickets``, the CSV rows for the product team.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, select

from supportdesk.desk.desk import Desk
from supportdesk.reports.figures import FACT_KINDS as FACT_KINDS
from supportdesk.reports.figures import ReportDesk
from supportdesk.reports.figures import _breached as _breached
from supportdesk.reports.figures import _left_out as _left_out
from supportdesk.reports.figures import _TicketFacts as _TicketFacts
from supportdesk.reports.figures import compute as compute
from supportdesk.reports.figures import flatten as flatten
from supportdesk.reports.figures import parse_date as parse_date
from supportdesk.reports.figures import percentile as percentile
from supportdesk.sla.hours import BusinessHours
from supportdesk.store.db import session_run
from supportdesk.store.models import Message
from supportdesk.store.report_sql import LEFT_OUT_SQL as LEFT_OUT_SQL
from supportdesk.store.report_sql import ReportSQL


def report_desk(desk: Desk) -> ReportDesk:
    """What the report reads of the desk's (validated) config."""
    config = desk.config
    return ReportDesk(
        config.desk.timezone,
        [c.name for c in config.channel],
        lambda channel: BusinessHours.from_config(config, channel),
    )


def report(
    desk: Desk,
    since: date | None = None,
    until: date | None = None,
    *,
    now: datetime | None = None,
    days: int = 30,
) -> dict[str, Any]:
    """``compute`` in its own short read transaction (for the CLI and the console)."""
    with desk.db.read() as session:
        dialect = session.get_bind().dialect.name
        return compute(
            session_run(session), dialect, report_desk(desk), since, until, now=now, days=days
        )


def _touched(session: Session, start: datetime, end: datetime) -> set[int]:
    """``store.report_sql.ReportSQL.touched`` for the period [start, end) in ``session``."""
    dialect = session.get_bind().dialect.name
    return ReportSQL(session_run(session), dialect, start, end, end).touched()


EXPORT_COLUMNS = [
    "id", "created_at", "channel", "status", "priority", "subject", "customer_name",
    "customer_addresses", "assignee", "group", "tags", "first_response_at", "solved_at",
    "sla_breached", "csat", "csat_comment", "message_count", "first_message",
]  # fmt: skip


def export_tickets(
    desk: Desk, query: str = "", *, limit: int | None = None
) -> list[dict[str, Any]]:
    """Tickets matching a query (``tag:billing``, words...) as flat rows for the product team."""
    with desk.db.read() as session:
        from supportdesk.tickets.read import list_tickets, ticket_rows

        tickets = list_tickets(session, desk, query, limit=limit, order="newest")
        out: list[dict[str, Any]] = []
        for i in range(0, len(tickets), 500):
            chunk = tickets[i : i + 500]
            ids = [t.id or 0 for t in chunk]
            first: dict[int, str] = {}
            for tid, text in session.exec(
                select(Message.ticket_id, Message.text)
                .where(col(Message.ticket_id).in_(ids), Message.direction == "in")
                .order_by(col(Message.created_at).desc(), col(Message.id).desc())
            ).all():
                first[tid] = text  # the oldest one is written last
            comments = {t.id: t.csat_comment for t in chunk}
            for row in ticket_rows(session, chunk):
                cust = row["customer"]
                out.append(
                    {
                        **{k: row.get(k) for k in EXPORT_COLUMNS if k in row},
                        "customer_name": cust.get("name")
                        or next((i["address"] for i in cust.get("identities", [])), ""),
                        "customer_addresses": [
                            f"{i['kind']}:{i['address']}" for i in cust.get("identities", [])
                        ],
                        "csat_comment": comments.get(row["id"]),
                        "first_message": first.get(row["id"], ""),
                    }
                )
        return out
