"""`supportdesk search QUERY`: full text over tickets, messages, customers and the KB."""

from __future__ import annotations

import typer

from supportdesk.cli.context import desk_of
from supportdesk.cli.options import CsvOut, JsonOut, QueryCommand
from supportdesk.cli.render import print_hits


def search_cmd(
    ctx: typer.Context,
    query: list[str] = typer.Argument(..., help='Words, "a phrase", prefix*, -excluded, filters.'),
    json_out: JsonOut = False,
    csv_out: CsvOut = False,
    newest: bool = typer.Option(False, "--newest", help="Newest first instead of best match."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=500, help="At most this many hits."),
    offset: int = typer.Option(0, "--offset", min=0, help="Skip this many hits (paging)."),
    kind: list[str] = typer.Option(
        None, "--kind", "-k", help="tickets, messages, customers or kb (repeat for several)."
    ),
) -> None:
    """Search ticket subjects, messages, attachment names, customers and KB articles.

    Russian and English word forms match (принтер finds принтера, printer finds printers);
    прин* is a prefix, "quoted words" a phrase, -word excludes; filters such as status:open
    narrow the tickets found.

    Example: supportdesk search "не печатает" status:open --json
    """
    from supportdesk.search.search import search_desk

    desk = desk_of(ctx)
    kinds = [k for part in (kind or []) for k in part.split(",") if k.strip()]
    hits = search_desk(desk, " ".join(query), kinds=kinds or None, newest=newest,
                       limit=limit, offset=offset)  # fmt: skip
    print_hits(hits, json_out=json_out, csv_out=csv_out)


def register(app: typer.Typer) -> None:
    app.command("search", cls=QueryCommand)(search_cmd)
