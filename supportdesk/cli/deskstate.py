"""The global options' state and the desk they open, shared by the typer application
(``cli.context.state``) and the console's fast path (``cli.console.fast_console``), which
opens the console without loading typer: nothing here imports it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from supportdesk.desk.desk import Desk


@dataclass
class CliState:
    home: Path | None = None
    agent: str | None = None
    db_url: str | None = None
    _desk: Any = field(default=None, repr=False)

    def desk_home(self) -> Path:
        """The desk's home, refused when it holds no desk (without loading the database layer)."""
        from supportdesk.core.locations import config_path, database_path, default_home

        home = (self.home or default_home()).expanduser()
        if not self.db_url and not config_path(home).exists() and not database_path(home).exists():
            from supportdesk.desk.desk import NotFound

            # a typo in --home must not quietly create an empty desk somewhere
            raise NotFound(
                f"there is no desk in {home}; create one with `supportdesk --home {home} init` "
                "or try `supportdesk demo`"
            )
        return home

    def desk(self) -> Desk:
        if self._desk is None:
            from supportdesk.desk.desk import open_desk

            home = self.desk_home()
            self._desk = open_desk(home, agent=self.agent, db_url=self.db_url)
            from supportdesk.cli import output

            output.set_timezone(self._desk.config.desk.timezone)
        return self._desk
