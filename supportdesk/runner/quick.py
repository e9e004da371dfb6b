"""The read commands' quick path, as a service: `tickets list` without query terms, `tickets show`,
`status` and `report` on a desk whose config and schema are certainly what this code knows, over a plain
``sqlite3`` connection (SQLite) or a libpq one (PostgreSQL, ``store.libpq``: all but `tickets
show`), without SQLAlchemy, psycopg, pydantic or the model classes (most of a
command's start-up). ``open_quick`` answers None whenever it is not certain (the command then
takes the full path, which has every error message); the SQL and the documents are the full
path's own (``store.reads``, ``tickets.rows``, ``tickets.shown``, ``runner.health``).

Roles: the quick path serves SQLite desks, where roles are advisory (``desk.roles``), and
PostgreSQL desks that are not team desks (``store.quick.open_postgres`` checks); a team desk,
where a login's role is enforced, always takes the full path.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path
from typing import Any

from supportdesk.core.locations import default_home
from supportdesk.core.quickconfig import QuickConfig, quick_config
from supportdesk.desk.roles import default_agent, roles_note
from supportdesk.runner.health import status_doc
from supportdesk.store.quick import open_postgres, open_sqlite, sqlite_run
from supportdesk.store.reads import Run
from supportdesk.tickets.rows import whole_queue


class QuickDesk:
    """The home, its config, the acting agent and a read transaction on its database."""

    def __init__(self, home: Path, config: QuickConfig, agent: str, conn: Any):
        self.home, self.config, self.agent, self.conn = home, config, agent, conn
        self.run: Run = sqlite_run(conn) if isinstance(conn, sqlite3.Connection) else conn.run

    def queue(self, *, order: str, limit: int | None) -> list[dict[str, Any]]:
        """`tickets list` without query terms: the rows of ``tickets.read.queue_rows``."""
        return whole_queue(self.run, order=order, limit=limit)

    def show(self, ticket_id: int) -> dict[str, Any]:
        """`tickets show`: the document of ``tickets.read.show_ticket`` (NotFound as there).
        SQLite desks only: on PostgreSQL ``LookupError`` sends the command to the full path."""
        from supportdesk.tickets.shown import show_doc

        if not isinstance(self.conn, sqlite3.Connection):
            raise LookupError("tickets show takes the full path on PostgreSQL")
        return show_doc(self.run, ticket_id, self.config.own_addresses)

    def status(self) -> dict[str, Any]:
        """`status`: the document of ``runner.status.desk_status`` with its roles."""
        cfg = self.config
        doc = status_doc(self.run, cfg.desk_name, cfg.channels)
        doc["roles"] = {"enforced": False, "agent": self.agent, "login": None}
        return doc

    def report(self, since: date | None, until: date | None) -> dict[str, Any]:
        """`report`: the document of ``reports.metrics.report`` (``reports.figures.compute``
        over the same SQL, on SQLite or PostgreSQL). Hours the quick config cannot read as the
        validation did (``LookupError``) and a period the full path refuses (``BadInput``)
        send the command to the full path."""
        from supportdesk.reports.figures import ReportDesk, compute
        from supportdesk.sla.hours import BusinessHours

        dialect = "sqlite" if isinstance(self.conn, sqlite3.Connection) else "postgresql"
        cfg = self.config
        zone = cfg.timezone
        desk = ReportDesk(
            zone,
            [name for name, _type in cfg.channels],
            lambda channel: BusinessHours.from_spec(zone, cfg.hours(channel)),
        )
        return compute(self.run, dialect, desk, since, until)

    def search(
        self, text: str, *, kinds: list[str] | None, newest: bool, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        """`search`: the hits of ``search.search.search`` (``search.found`` over the SQL of
        ``store.hits``). Filter terms (status:open ...) are the full path's (``LookupError``),
        and so is a query it refuses (``BadInput``)."""
        from supportdesk.search.found import plan, search

        p = plan(text)
        if p.filters.terms:
            raise LookupError("filter terms take the full path")
        dialect = "sqlite" if isinstance(self.conn, sqlite3.Connection) else "postgresql"
        return search(self.run, dialect, p, kinds=kinds, newest=newest, limit=limit, offset=offset)

    def roles_note(self) -> str:
        return roles_note(self.agent)

    def close(self) -> None:
        self.conn.close()


def open_quick(home: Path | None, agent: str | None) -> QuickDesk | None:
    """The desk for the quick path, or None when only the full path can be sure."""
    home = (home or default_home()).expanduser()
    cfg = quick_config(home)
    if cfg is None:
        return None
    # a PostgreSQL desk: not a team desk (logins, roles: see store.quick.open_postgres)
    conn = open_postgres(cfg.database_url) if cfg.database_url else open_sqlite(home)
    if conn is None:
        return None
    return QuickDesk(home=home, config=cfg, agent=agent or default_agent(), conn=conn)
