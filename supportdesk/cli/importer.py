"""`supportdesk import PATH...`"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from supportdesk.cli.context import desk_of, state
from supportdesk.cli.options import JsonOut
from supportdesk.cli.output import console, print_json, say
from supportdesk.core.text import inert


def import_cmd(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(
        ..., help=".eml files, mbox files, Maildir folders, folders of .eml."
    ),
    channel: str | None = typer.Option(
        None, "--channel", help="The e-mail channel these belong to."
    ),
    json_out: JsonOut = False,
    workers: int = typer.Option(2, "--workers", min=1, max=16, help="Parser processes."),
) -> None:
    """Import mail from files. Idempotent: a second run adds nothing.

    Messages from the desk's own addresses become outbound replies; imported history never
    triggers acknowledgements.

    Example: supportdesk import ~/Maildir/support old-mail.mbox --channel support
    """
    from supportdesk.channels.files import count_raw_messages, iter_raw_refs
    from supportdesk.inbound.prep import Preparer

    for p in paths:
        if not p.exists() and not p.is_symlink():
            from supportdesk.desk.desk import BadInput

            raise BadInput(f"{p} does not exist")
    # The parser processes start now, before the database layer is loaded (about half a
    # second of imports): they read, keep and parse while this process gets the store ready.
    home = state(ctx).desk_home()
    with Preparer(home, iter_raw_refs(paths), workers=workers) as prepared:
        from supportdesk.inbound.importing import email_channel, import_items

        desk = desk_of(ctx)
        name = email_channel(desk, channel)
        show_progress = sys.stderr.isatty() and not json_out
        if show_progress:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            total = count_raw_messages(paths)
            with Progress(
                TextColumn("Importing"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console(stderr=True),
                transient=True,
            ) as prog:
                task = prog.add_task("import", total=total or None)
                summary = import_items(
                    desk,
                    channel=name,
                    prepared=prepared,
                    progress=lambda n: prog.advance(task, n),
                )
        else:
            summary = import_items(desk, channel=name, prepared=prepared)
    if json_out:
        print_json(summary.as_dict())
    else:
        say(
            f"Imported {summary.imported}, duplicates {summary.duplicates}, "
            f"quarantined {summary.quarantined}, unreadable {summary.unreadable}, "
            f"skipped {len(summary.skipped)} ({len(summary.new_tickets)} new tickets)."
        )
        for path, why in summary.skipped[:20]:
            say(inert(f"  skipped {path}: {why}", one_line=True))
        if len(summary.skipped) > 20:
            say(f"  and {len(summary.skipped) - 20} more skipped (see --json).")


def register(app: typer.Typer) -> None:
    app.command("import")(import_cmd)
