"""The desk: home, configuration, database and the acting agent, handed to every service."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from pathlib import Path

from supportdesk.core.config import Config, load_config
from supportdesk.core.errors import BadInput, Conflict, NotFound, Refused, ServiceError
from supportdesk.core.locations import default_home
from supportdesk.store.db import Database, open_database


def default_agent() -> str:
    env = os.environ.get("SUPPORTDESK_AGENT")
    if env:
        return env
    try:
        return getpass.getuser()
    except Exception:
        return "agent"


@dataclass
class Desk:
    home: Path
    config: Config
    db: Database
    agent: str = field(default_factory=default_agent)

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
    return Desk(home=home, config=config, db=db, agent=agent or default_agent())


# The errors live in core (every layer raises them); they are named here too because every
# service that takes a Desk raises them.
__all__ = ["BadInput", "Conflict", "Desk", "NotFound", "Refused", "ServiceError", "open_desk"]
