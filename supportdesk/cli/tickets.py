"""`supportdesk tickets ...`: the queue and one ticket."""

from __future__ import annotations

from typing import Any

import typer

from supportdesk.cli.context import desk_of
from supportdesk.cli.options import CsvOut, JsonOut, QueryCommand
from supportdesk.cli.output import (
    console,
    human_time,
    inert,
    print_json,
)
from supportdesk.cli.render import print_queue

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


def _print_ticket(doc: dict[str, Any]) -> None:
    from rich.rule import Rule
    from rich.text import Text

    con = console()
    cust = doc["customer"]
    head = Text()
    head.append(f"#{doc['id']} ", style="bold")
    head.append(inert(doc["subject"], one_line=True), style="bold")
    con.print(head)
    meta = (
        f"{doc['status']} · {doc['priority']} · {doc['channel']} · assignee {doc['assignee'] or '-'}"
        f" · tags {', '.join(doc['tags']) or '-'}"
    )
    if doc.get("due_at"):
        meta += f" · due {human_time(doc['due_at'])}"
    if doc.get("first_response_queued"):
        meta += " · first response: reply queued, not delivered yet"
    con.print(Text(inert(meta, one_line=True), style="dim"))
    idents = ", ".join(f"{i['kind']}:{i['address']}" for i in cust.get("identities", []))
    con.print(Text(inert(f"Customer: {cust.get('name') or '-'} <{idents}>", one_line=True)))
    if doc.get("participants"):
        con.print(
            Text(inert("Also on the thread: " + ", ".join(doc["participants"]), one_line=True))
        )
    if doc.get("history"):
        con.print(Text("Other tickets of this customer:", style="bold"))
        for h in doc["history"][:10]:
            con.print(
                Text(
                    inert(
                        f"  #{h['id']} [{h['channel']}] {h['status']:7} {human_time(h['created_at'])[:10]}  {h['subject']}",
                        one_line=True,
                    )
                )
            )
    for m in doc["messages"]:
        con.print(Rule(style="dim"))
        arrow = {"in": "←", "out": "→", "note": "✎ note"}.get(m["direction"], m["direction"])
        line = f"{arrow} {m['author'] or m['author_address']} · {m['channel']} · {human_time(m['created_at'])}"
        if m.get("delivery"):
            d = m["delivery"]
            line += f" · {d['status']}" + (f" ({d['error']})" if d.get("error") else "")
            if d["status"] == "in_doubt":
                line += f" · decide: outbox resend {d['outbox_id']} / outbox drop {d['outbox_id']}"
        con.print(
            Text(inert(line, one_line=True), style="bold" if m["direction"] != "note" else "yellow")
        )
        if m.get("to") and m["direction"] != "in":
            rcpt = "to " + ", ".join(m["to"])
            if m.get("cc"):
                rcpt += " · cc " + ", ".join(m["cc"])
            if m.get("bcc"):
                rcpt += " · bcc " + ", ".join(m["bcc"])
            con.print(Text(inert("  " + rcpt, one_line=True), style="dim"))
        elif m.get("cc"):
            con.print(Text(inert("  cc " + ", ".join(m["cc"]), one_line=True), style="dim"))
        if m.get("thread_reason"):
            con.print(Text(inert(f"  joined: {m['thread_reason']}", one_line=True), style="dim"))
        con.print(Text(inert(m["text"])))
        if m.get("quoted_text"):
            n = m["quoted_text"].count("\n") + 1
            con.print(Text(f"  [{n} quoted line(s) folded]", style="dim"))
        for a in m["attachments"]:
            con.print(
                Text(
                    inert(
                        f"  📎 {a['filename']} ({a['size']} bytes, {a['content_type']})"
                        + (f" — {a['note']}" if a.get("note") else ""),
                        one_line=True,
                    )
                )
            )


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
        _print_ticket(doc)
