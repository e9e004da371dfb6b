"""`supportdesk customers ...`: customer records and the identity graph."""

from __future__ import annotations

from typing import Any

import typer

from supportdesk.cli.context import desk_of
from supportdesk.cli.options import CsvOut, DryRun, JsonOut
from supportdesk.cli.output import console, inert, print_csv, print_json, print_table
from supportdesk.cli.triage import show_result

app = typer.Typer(
    help="Customers: records, identities, merges.", no_args_is_help=True, rich_markup_mode=None
)

CSV_COLUMNS = [
    "id",
    "name",
    "company",
    "phone",
    "language",
    "identities",
    "tickets",
    "merged_into",
    "created_at",
]


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    r = dict(row)
    r["identities"] = [f"{i['kind']}:{i['address']}" for i in row.get("identities", [])]
    return r


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    text: str = typer.Argument("", help="Part of a name, company, phone or address."),
    json_out: JsonOut = False,
    csv_out: CsvOut = False,
    all_: bool = typer.Option(False, "--all", help="Include customers merged into others."),
    limit: int = typer.Option(100, "--limit", "-n", min=1, help="At most this many."),
) -> None:
    """List customers.

    Example: supportdesk customers list example.com --json
    """
    from supportdesk.people.customers import list_customers

    desk = desk_of(ctx)
    rows = list_customers(desk, text, limit=limit, include_merged=all_)
    if json_out:
        print_json(rows)
    elif csv_out:
        print_csv([_flat(r) for r in rows], CSV_COLUMNS)
    else:
        print_table(
            [_flat(r) for r in rows],
            [
                ("id", "#"),
                ("name", "Name"),
                ("company", "Company"),
                ("identities", "Identities"),
                ("tickets", "Tickets"),
            ],
            empty="No customers match.",
            max_width={"name": 30, "identities": 50},
        )


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    ref: str = typer.Argument(
        ..., metavar="CUSTOMER", help="Id, e-mail address, @username or kind:address."
    ),
    json_out: JsonOut = False,
) -> None:
    """The customer card: fields, identities and every ticket on every channel.

    Example: supportdesk customers show ann@example.com
    """
    from rich.text import Text

    from supportdesk.people.customers import show_customer

    desk = desk_of(ctx)
    doc = show_customer(desk, ref)
    if json_out:
        print_json(doc)
        return
    con = console()
    con.print(
        Text(inert(f"Customer {doc['id']}: {doc['name'] or '-'}", one_line=True), style="bold")
    )
    if doc["merged_into"]:
        con.print(Text(f"Merged into customer {doc['merged_into']}.", style="yellow"))
    for label in ("company", "phone", "language"):
        if doc[label]:
            con.print(Text(inert(f"{label.capitalize()}: {doc[label]}", one_line=True)))
    for i in doc["identities"]:
        extra = f" ({i['display']})" if i["display"] and i["display"] != i["address"] else ""
        con.print(Text(inert(f"  {i['kind']}:{i['address']}{extra}", one_line=True)))
    if doc["notes"]:
        con.print(Text("Notes:", style="bold"))
        con.print(Text(inert(doc["notes"])))
    if doc["merged_customers"]:
        con.print(
            Text(
                inert(
                    "Merged here: "
                    + ", ".join(f"{m['id']} {m['name']}" for m in doc["merged_customers"]),
                    one_line=True,
                )
            )
        )
    print_table(
        doc["history"],
        [
            ("id", "#"),
            ("channel", "Channel"),
            ("status", "Status"),
            ("created_at", "Created"),
            ("subject", "Subject"),
        ],
        empty="No tickets.",
        max_width={"subject": 50},
    )


@app.command("edit")
def edit_cmd(
    ctx: typer.Context,
    ref: str = typer.Argument(..., metavar="CUSTOMER"),
    name: str | None = typer.Option(None, "--name"),
    company: str | None = typer.Option(None, "--company"),
    phone: str | None = typer.Option(None, "--phone"),
    language: str | None = typer.Option(None, "--language", help="e.g. ru, en."),
    notes: str | None = typer.Option(None, "--notes", help="Free notes (replaces the old ones)."),
    dry_run: DryRun = False,
    json_out: JsonOut = False,
) -> None:
    """Edit a customer's name, company, phone, language or notes.

    Example: supportdesk customers edit ann@example.com --company "Acme Ltd" --language en
    """
    from supportdesk.people import customers

    show_result(
        customers.edit(
            desk_of(ctx),
            ref,
            name=name,
            company=company,
            phone=phone,
            language=language,
            notes=notes,
            dry_run=dry_run,
        ),
        json_out,
    )


@app.command("merge")
def merge_cmd(
    ctx: typer.Context,
    source: str = typer.Argument(
        ..., metavar="CUSTOMER", help="The duplicate (it is merged away)."
    ),
    into: str = typer.Option(..., "--into", help="The customer that stays."),
    dry_run: DryRun = False,
    json_out: JsonOut = False,
) -> None:
    """Merge a duplicate customer into another: identities move (lead only).

    Example: supportdesk customers merge telegram:12345 --into ann@example.com
    """
    from supportdesk.people import customers

    show_result(customers.merge(desk_of(ctx), source, into, dry_run=dry_run), json_out)


@app.command("unmerge")
def unmerge_cmd(
    ctx: typer.Context,
    ref: str = typer.Argument(..., metavar="CUSTOMER", help="The merged customer's id."),
    dry_run: DryRun = False,
    json_out: JsonOut = False,
) -> None:
    """Separate a merged customer again: its identities go back (lead only).

    Example: supportdesk customers unmerge 17
    """
    from supportdesk.people import customers

    show_result(customers.unmerge(desk_of(ctx), ref, dry_run=dry_run), json_out)


@app.command("link")
def link_cmd(
    ctx: typer.Context,
    ref: str = typer.Argument(..., metavar="CUSTOMER"),
    identity: str = typer.Argument(
        ...,
        metavar="KIND:ADDRESS",
        help="email:…, telegram:…, phone:…, or an installed channel's kind",
    ),
    dry_run: DryRun = False,
    json_out: JsonOut = False,
) -> None:
    """Add an identity to a customer (moving it from another customer if needed).

    Example: supportdesk customers link ann@example.com phone:+79001234567
    """
    from supportdesk.people import customers

    show_result(customers.link(desk_of(ctx), ref, identity, dry_run=dry_run), json_out)


@app.command("unlink")
def unlink_cmd(
    ctx: typer.Context,
    identity: str = typer.Argument(..., metavar="KIND:ADDRESS"),
    dry_run: DryRun = False,
    json_out: JsonOut = False,
) -> None:
    """Remove an identity from its customer.

    Example: supportdesk customers unlink email:old-address@example.com
    """
    from supportdesk.people import customers

    show_result(customers.unlink(desk_of(ctx), identity, dry_run=dry_run), json_out)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="customers")
