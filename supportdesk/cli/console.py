"""Opening the console from the command line."""

from __future__ import annotations

import typer

from supportdesk.cli.context import desk_of


def open_console(ctx: typer.Context) -> None:
    from supportdesk.ui.app import run_console

    run_console(desk_of(ctx))
