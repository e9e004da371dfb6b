"""`supportdesk report` (support metrics) and `supportdesk export-tickets` (CSV for the product team)."""

from __future__ import annotations

from typing import Any

import typer

from supportdesk.cli.context import desk_of
from supportdesk.cli.options import CsvOut, JsonOut, QueryCommand
from supportdesk.cli.output import console, inert, print_csv, print_json, print_table


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def _median_p90(fig: dict[str, Any]) -> str:
    return f"median {_fmt(fig['median'])} · p90 {_fmt(fig['p90'])} (n={fig['count']})"


def _print_report(doc: dict[str, Any]) -> None:
    from rich.text import Text

    con = console()
    p = doc["period"]
    head = Text()
    head.append("Support report ", style="bold")
    head.append(f"{p['since']} – {p['until']} ({p['timezone']}", style="")
    head.append(", business hours)" if p["business_hours"] else ", around the clock)")
    con.print(head)
    fr, res, cs = doc["first_response_minutes"], doc["resolution_minutes"], doc["csat"]
    summary = [
        {"figure": "Tickets created", "value": _fmt(doc["tickets_created"])},
        {"figure": "Tickets solved", "value": _fmt(doc["tickets_solved"])},
        {
            "figure": "First response, minutes",
            "value": f"median {_fmt(fr['median'])} · p90 {_fmt(fr['p90'])} (n={fr['count']})",
        },
        {
            "figure": "Resolution, minutes",
            "value": f"median {_fmt(res['median'])} · p90 {_fmt(res['p90'])} (n={res['count']})",
        },
        {
            "figure": "First response, calendar minutes",
            "value": _median_p90(doc["first_response_minutes_calendar"]),
        },
        {
            "figure": "Resolution, calendar minutes",
            "value": _median_p90(doc["resolution_minutes_calendar"]),
        },
        {
            "figure": "First-contact resolution",
            "value": f"{_pct(doc['first_contact_resolution']['rate'])} "
            f"({doc['first_contact_resolution']['count']} tickets)",
        },
        {
            "figure": "Reopen rate",
            "value": f"{_pct(doc['reopened']['rate'])} ({doc['reopened']['count']} tickets)",
        },
        {
            "figure": "SLA breach rate",
            "value": f"{_pct(doc['sla_breach_rate'])} ({doc['sla_breached']} tickets)",
        },
        {
            "figure": "CSAT",
            "value": f"average {_fmt(cs['average'])} · {cs['responses']} responses to "
            f"{cs['requested']} surveys ({_pct(cs['response_rate'])})",
        },
        {
            "figure": "NPS",
            "value": f"{_fmt(doc['nps']['score'])} · {doc['nps']['responses']} responses "
            f"({doc['nps']['promoters']} promoters, {doc['nps']['detractors']} detractors) "
            f"to {doc['nps']['requested']} surveys",
        },
        {"figure": "Backlog", "value": _fmt(doc["backlog"])},
    ]
    print_table(summary, [("figure", "Figure"), ("value", "Value")])
    for title, key, cols in (
        ("By channel", "by_channel", ["created", "solved", "breached", "first_response_median"]),
        ("By priority", "by_priority", ["created", "solved", "breached"]),
        (
            "By agent",
            "by_agent",
            ["replies", "solved", "complaints", "first_response_median", "resolution_median"],
        ),
    ):
        con.print(Text(f"\n{title}", style="bold"))
        rows = [{"name": name, **figures} for name, figures in doc[key].items()]
        print_table(
            rows,
            [
                ("name", key.removeprefix("by_").capitalize()),
                *[(c, c.replace("_", " ")) for c in cols],
            ],
            formatters=dict.fromkeys(cols, _fmt),
        )
    con.print(Text("\nTop tags", style="bold"))
    print_table(doc["top_tags"], [("tag", "Tag"), ("count", "Tickets")], empty="No tags.")
    con.print(Text("\nBacklog by age", style="bold"))
    print_table(doc["backlog_by_age"], [("age", "Age"), ("count", "Tickets")])


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
        _print_report(doc)


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
