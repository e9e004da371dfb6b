"""`supportdesk team init`: make a PostgreSQL database a team desk whose roles the database
enforces (see store/teamdb.py for what each role may do)."""

from __future__ import annotations

from typing import Any

from supportdesk.core.errors import BadInput
from supportdesk.store import teamdb
from supportdesk.store.db import Database, StoreError, is_postgres_url, normalize_url
from supportdesk.store.migrate import upgrade_if_needed


def init_team(url: str, *, runners: list[str], leads: list[str]) -> dict[str, Any]:
    """Upgrade the schema, then create the roles, privileges, policies and triggers. Run as
    the database's owner (who needs CREATEROLE); running it again after an upgrade extends
    the privileges to new tables."""
    url = normalize_url(url)
    if not is_postgres_url(url):
        raise BadInput(
            "team init needs a PostgreSQL database URL (postgresql:///NAME); on a SQLite desk "
            "roles stay advisory"
        )
    import sqlalchemy as sa

    db = Database(url)
    try:
        try:
            upgrade_if_needed(db)
            with db.write_engine.begin() as conn:
                teamdb.install(conn, runners=runners, leads=leads)
                user = conn.exec_driver_sql("SELECT session_user").scalar_one()
        except sa.exc.OperationalError as exc:
            raise StoreError(f"the database cannot be used: {str(exc.orig).strip()}") from None
        except sa.exc.ProgrammingError as exc:
            first = str(exc.orig).strip().splitlines()[0]
            raise StoreError(
                f"team init must run as the database's owner with CREATEROLE: {first}"
            ) from None
    finally:
        db.dispose()
    return {
        "owner": user,
        "roles": [teamdb.AGENT, teamdb.LEAD, teamdb.RUNNER],
        "runners": runners,
        "leads": leads,
    }
