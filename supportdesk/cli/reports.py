"""`supportdesk report` (support metrics) and `supportdesk export-tickets` (CSV for the product team)."""

from __future__ import annotations

import typer

from supportdesk.cli.context import desk_of
from supportdesk.cli.options import CsvOut, JsonOut, QueryCommand
from supportdesk.cli.output import inert, print_csv, print_json, print_table
from supportdesk.cli.render import print_report


def report_cmd(
    ctx: typer.Context,
    since: str | None = typer.Option(
        None,
        "--since",
        help="First day (YYYY-MM-DD, desk time zone); default 29 days before --until.",
    ),
    until: str | None = typer.Option(None, "--until", help="Last day, included; default today."),
    json_out: JsonOut = False,
    csv_out: CsvOut = False,
) -> None:
    """Support metrics for a period: volume, response and resolution times, SLA, CSAT.

    Times count business hours when [desk.hours] is set. Every figure is computed from the
    event log and the tickets.

    Example: supportdesk report --since 2026-11-01 --until 2026-11-30 --json
    """
    from supportdesk.desk.desk import BadInput
    from supportdesk.reports import metrics

    if json_out and csv_out:
        raise BadInput("choose one of --json and --csv")
    d_since = metrics.parse_date(since, "--since") if since else None
    d_until = metrics.parse_date(until, "--until") if until else None
    desk = desk_of(ctx)
    doc = metrics.report(desk, d_since, d_until)
    if json_out:
        print_json(doc)
    elif csv_out:
        print_csv(metrics.flatten(doc), ["metric", "key", "value"])
    else:
        print_report(doc)


def export_cmd(
    ctx: typer.Context,
    query: list[str] = typer.Argument(
        None, help="Query terms (tag:billing, created:>2026-11-01, words...); empty = every ticket."
    ),
    tag: list[str] = typer.Option(
        [], "--tag", help="Only tickets with this tag (repeat for any of several)."
    ),
    csv_out: bool = typer.Option(True, "--csv/--no-csv", help="CSV with a header row (default)."),
    json_out: JsonOut = False,
    limit: int | None = typer.Option(
        None, "--limit", "-n", min=1, help="At most this many tickets."
    ),
) -> None:
    """Export tickets matching a query as CSV (newest first), with the customer's first message.

    Example: supportdesk export-tickets tag:billing created:>2026-11-01 --csv > billing.csv
    """
    from supportdesk.reports.metrics import EXPORT_COLUMNS, export_tickets

    q = " ".join(query or [])
    if tag:
        q = (q + " tag:" + ",".join(t.strip() for t in tag if t.strip())).strip()
    desk = desk_of(ctx)
    rows = export_tickets(desk, q, limit=limit)
    if json_out:
        print_json(rows)
    elif csv_out:
        print_csv(rows, EXPORT_COLUMNS)
    else:
        print_table(
            rows,
            [("id", "#"), ("status", "Status"), ("tags", "Tags"), ("subject", "Subject")],
            empty="No tickets match.",
            formatters={"subject": lambda v: inert(v, one_line=True)},
        )


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)
    app.command("export-tickets", cls=QueryCommand)(export_cmd)
