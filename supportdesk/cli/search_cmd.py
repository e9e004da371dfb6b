"""`supportdesk search QUERY`: full text over tickets, messages, customers and the KB."""

from __future__ import annotations

from typing import Any

import typer

from supportdesk.cli.context import desk_of
from supportdesk.cli.options import CsvOut, JsonOut, QueryCommand
from supportdesk.cli.output import console, inert, print_csv, print_json

CSV_COLUMNS = ["kind", "id", "ticket_id", "title", "snippet", "score", "when"]


def styled(text: str, spans: list[list[int]], style: str = "bold reverse") -> Any:
    """Text with the matching words marked; never interprets markup found in the data."""
    from rich.text import Text

    t = Text(inert(text, one_line=True))
    for a, b in spans:
        t.stylize(style, a, b)
    return t


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
    if json_out:
        print_json(hits)
        return
    if csv_out:
        print_csv(hits, CSV_COLUMNS)
        return
    from rich.text import Text

    con = console()
    if not hits:
        con.print(Text("Nothing found."))
        return

    def ref_of(h: dict[str, Any]) -> str:
        return {"ticket": f"#{h['id']}", "message": f"#{h['ticket_id']} msg {h['id']}",
                "customer": f"customer {h['id']}",
                "kb": f"kb {h.get('slug', h['id'])}"}[h["kind"]]  # fmt: skip

    refs = [inert(ref_of(h), one_line=True) for h in hits]
    width = max(len(r) for r in refs)
    for ref, h in zip(refs, hits, strict=True):
        head = Text()
        head.append(f"{ref:<{width}}  ", style="bold")
        head.append_text(styled(h["title"], h["title_highlights"]))
        extra = h.get("status") or ""
        if h["kind"] == "ticket" and h.get("customer"):
            extra = f"{extra} · {h['customer']}"
        if extra:
            head.append(Text(f"  [{inert(extra, one_line=True)}]", style="dim"))
        con.print(head, overflow="ellipsis", no_wrap=True)
        if h["snippet"]:
            line = Text(" " * (width + 2))
            line.append_text(styled(h["snippet"], h["highlights"]))
            con.print(line, overflow="ellipsis", no_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("search", cls=QueryCommand)(search_cmd)
