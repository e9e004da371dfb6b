"""`supportdesk tickets ...`: the queue and one ticket."""

from __future__ import annotations

import typer

from supportdesk.cli.context import desk_of
from supportdesk.cli.options import CsvOut, JsonOut, QueryCommand
from supportdesk.cli.output import print_json
from supportdesk.cli.render import print_queue, print_ticket

app = typer.Typer(
    help="The queue: list, show, reply, triage.", no_args_is_help=True, rich_markup_mode=None
)


@app.command("list", cls=QueryCommand)
def list_cmd(
    ctx: typer.Context,
    query: list[str] = typer.Argument(None, help="Query terms, e.g. status:open tag:billing"),
    json_out: JsonOut = False,
    csv_out: CsvOut = False,
    limit: int = typer.Option(
        100,
        "--limit",
        "-n",
        min=0,
        help="At most this many tickets; 0 = all of them.",
    ),
    order: str = typer.Option("hot", "--order", help="hot (priority, then due), newest, updated."),
) -> None:
    """List tickets, hot ones first.

    Example: supportdesk tickets list status:open channel:telegram --json
    """
    from supportdesk.desk.desk import BadInput
    from supportdesk.tickets.read import queue_rows

    if order not in ("hot", "newest", "updated"):
        raise BadInput(f"--order is hot, newest or updated, not {order!r}")
    desk = desk_of(ctx)
    q = " ".join(query or [])
    rows = queue_rows(desk, q, limit=limit or None, order=order)
    print_queue(rows, json_out=json_out, csv_out=csv_out, limit=limit)


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    ticket_id: int = typer.Argument(..., metavar="ID", help="The ticket number."),
    json_out: JsonOut = False,
) -> None:
    """Show a ticket's whole thread with the customer's tickets on every channel.

    Example: supportdesk tickets show 42 --json
    """
    from supportdesk.tickets.read import show_ticket

    desk = desk_of(ctx)
    doc = show_ticket(desk, ticket_id)
    if json_out:
        print_json(doc)
    else:
        print_ticket(doc)
