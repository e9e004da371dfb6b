"""The desk: home, configuration, database and the acting agent, handed to every service."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from supportdesk.core.config import Config, load_config
from supportdesk.core.errors import BadInput, Conflict, NotFound, Refused, ServiceError
from supportdesk.core.locations import default_home
from supportdesk.desk.roles import default_agent as default_agent
from supportdesk.desk.roles import roles_note
from supportdesk.store import teamdb
from supportdesk.store.db import Database, open_database
from supportdesk.store.teamdb import TeamLogin


@dataclass
class Desk:
    home: Path
    config: Config
    db: Database
    agent: str = field(default_factory=default_agent)
    # on a team desk (PostgreSQL after `team init`): the database's login, who really acts
    login: TeamLogin | None = None

    @property
    def roles_enforced(self) -> bool:
        """True when the database enforces roles; on other desks they are advisory."""
        return self.login is not None

    def roles_note(self) -> str:
        """One line for `status` and the console: who acts, and who enforces the roles."""
        return roles_note(self.agent, self.login)

    @property
    def own_addresses(self) -> set[str]:
        return self.config.own_addresses()

    def close(self) -> None:
        self.db.dispose()


def init_desk(home: Path | None = None, *, db_url: str | None = None) -> tuple[Path, Path]:
    """A new desk: the home folder, a commented config.toml and an empty database.
    Returns (home, config path)."""
    from supportdesk.core.config import write_default_config
    from supportdesk.core.locations import ensure_home

    home = (home or default_home()).expanduser()
    ensure_home(home)
    cfg = write_default_config(home)
    open_database(home, db_url).dispose()
    return home, cfg


def open_desk(
    home: Path | None = None, *, agent: str | None = None, db_url: str | None = None
) -> Desk:
    """Open a desk home: read config.toml, open (and upgrade) the database."""
    home = (home or default_home()).expanduser()
    config = load_config(home)
    url = db_url or config.desk.database_url
    db = open_database(home, url)
    login = None
    if not db.is_sqlite:
        try:
            with db.read_engine.connect() as conn:
                login = teamdb.login(conn)
        except BaseException:
            db.dispose()
            raise
    if login is None:
        return Desk(home=home, config=config, db=db, agent=agent or default_agent())
    acting = login.user
    if agent and agent != login.user:
        if not login.lead:
            db.dispose()
            raise Refused(
                f"on this team desk you act as your own login ({login.user}); only a lead may "
                f"act for another agent such as {agent}"
            )
        teamdb.act_on_behalf(db.write_engine, agent)
        teamdb.act_on_behalf(db.read_engine, agent)
        acting = agent
    return Desk(home=home, config=config, db=db, agent=acting, login=login)


# The errors live in core (every layer raises them); they are named here too because every
# service that takes a Desk raises them.
__all__ = ["BadInput", "Conflict", "Desk", "NotFound", "Refused", "ServiceError", "open_desk"]
