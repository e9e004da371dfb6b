"""`supportdesk poll` and `supportdesk run`."""

from __future__ import annotations

import sys

import typer

from supportdesk.cli.context import desk_of
from supportdesk.cli.options import JsonOut
from supportdesk.cli.output import console, inert, print_json


def poll_cmd(
    ctx: typer.Context,
    once: bool = typer.Option(False, "--once", help="One pass, then exit."),
    channel: list[str] = typer.Option(None, "--channel", help="Only this channel (repeatable)."),
    json_out: JsonOut = False,
    interval: float = typer.Option(
        30.0, "--interval", min=1.0, help="Seconds between passes without --once."
    ),
) -> None:
    """Fetch inbound messages and send the outbox. Exits 1 when a channel failed.

    Example: supportdesk poll --once --channel support
    """
    from supportdesk.runner.loop import Runner

    desk = desk_of(ctx)
    runner = Runner(desk, channels=list(channel) if channel else None)
    runner.channels()  # unknown channel names fail here, before any work
    while True:
        rep = runner.run_once()
        if json_out:
            print_json(rep.as_dict())
        else:
            con = console()
            for c in rep.channels:
                if c.error:
                    con.print(inert(f"{c.channel}: error: {c.error}", one_line=True))
                else:
                    con.print(
                        f"{c.channel}: {c.fetched} fetched, {c.new_tickets} new tickets, {c.quarantined} quarantined"
                    )
            con.print(
                f"outbox: {rep.outbox_sent} sent, {rep.outbox_retrying} to retry, {rep.outbox_failed} failed"
            )
        if once:
            if not rep.ok:
                raise typer.Exit(1)
            return
        import time

        time.sleep(interval)


def run_cmd(
    ctx: typer.Context,
    channel: list[str] = typer.Option(None, "--channel", help="Only this channel (repeatable)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log to stderr."),
) -> None:
    """Run continuously: IMAP IDLE, Telegram long polling, the outbox and SLA timers.

    One runner works per desk; a second one waits and takes over when the first stops.

    Example: supportdesk run --verbose
    """
    import logging

    from supportdesk.runner.loop import run_desk

    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    desk = desk_of(ctx)
    run_desk(desk, channels=list(channel) if channel else None)


def register(app: typer.Typer) -> None:
    app.command("poll")(poll_cmd)
    app.command("run")(run_cmd)
