"""Entry point: global options, error handling, and the sub-apps.

Imports are lazy: scripts call ``supportdesk`` often and start-up time matters.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from supportdesk.cli.context import EPILOG, DeskGroup, state

if TYPE_CHECKING:
    pass


app = typer.Typer(
    cls=DeskGroup,
    name="supportdesk",
    help="A terminal helpdesk: e-mail and Telegram conversations in one queue.\n\n"
    "Run without a command to open the console.",
    epilog=EPILOG,
    no_args_is_help=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version as dist_version

        v = dist_version("supportdesk")  # installed: pip install -e . or a wheel
        sys.stdout.write(f"supportdesk {v}\n")
        raise typer.Exit(0)


@app.callback(invoke_without_command=True)
def main(
    ctx: typer.Context,
    home: Path | None = typer.Option(
        None,
        "--home",
        envvar="SUPPORTDESK_HOME",
        help="The desk's home folder (config, database, files).",
    ),
    agent: str | None = typer.Option(
        None, "--as", envvar="SUPPORTDESK_AGENT", help="Act as this agent (default: the OS user)."
    ),
    db: str | None = typer.Option(
        None, "--db", envvar="SUPPORTDESK_DB", help="Database URL (default: SQLite in the home)."
    ),
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=_print_version,
        help="Print the version and exit.",
    ),
) -> None:
    """Example: supportdesk --home ~/desk tickets list status:open"""
    st = state(ctx)
    st.home, st.agent, st.db_url = home, agent, db
    if ctx.invoked_subcommand is None:
        from supportdesk.cli.console import open_console

        open_console(ctx)


def _register() -> None:
    from supportdesk.cli import (
        admin,
        agents,
        customers,
        demo,
        importer,
        kb,
        reports,
        rules,
        runner_cmd,
        search_cmd,
        teams,
        templates,
        tickets,
        triage,
    )

    app.add_typer(tickets.app, name="tickets")
    for mod in (admin, importer, triage, customers, templates, kb, agents, reports, search_cmd,
                demo, runner_cmd, teams, rules):  # fmt: skip
        mod.register(app)


_register()


def run() -> None:
    """The typer application as a command (``cli.entry.run`` comes here when the quick path
    cannot answer). Exits as ``cli.entry.quick_exit`` does."""
    import gc

    # a command allocates a lot (imports, then rows) and lives briefly: collect less often
    gc.set_threshold(10_000, 10, 10)
    code: int = 0
    try:
        app()
    except SystemExit as exc:
        if isinstance(exc.code, int):
            code = exc.code
        elif exc.code is not None:
            sys.stderr.write(f"{exc.code}\n")
            code = 1
    from supportdesk.cli.output import quick_exit

    quick_exit(code)
