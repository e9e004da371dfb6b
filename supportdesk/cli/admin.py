"""`init`, `status`, `quarantine ...`, `outbox ...`."""

from __future__ import annotations

from typing import Any

import typer

from supportdesk.cli.context import desk_of, state
from supportdesk.cli.options import CsvOut, JsonOut
from supportdesk.cli.output import console, inert, limit_hint, print_csv, print_json, print_table
from supportdesk.cli.render import print_status

quarantine_app = typer.Typer(
    help="Messages that could not be understood.", no_args_is_help=True, rich_markup_mode=None
)
outbox_app = typer.Typer(
    help="Replies waiting to be sent, sent, or failed.", no_args_is_help=True, rich_markup_mode=None
)


def init_cmd(ctx: typer.Context) -> None:
    """Write a commented config.toml and an empty database in the home.

    Example: supportdesk --home ~/desk init
    """
    from supportdesk.desk.desk import init_desk

    st = state(ctx)
    home, cfg = init_desk(st.home, db_url=st.db_url)
    console().print(
        f"Desk ready in {home}\nEdit {cfg} to add channels, then run: supportdesk poll --once"
    )


def status_cmd(ctx: typer.Context, json_out: JsonOut = False) -> None:
    """Each channel's last success and error, queue sizes, and the active runner.

    Example: supportdesk status --json
    """
    from supportdesk.runner.status import desk_status

    desk = desk_of(ctx)
    doc = desk_status(desk)
    doc["roles"] = {
        "enforced": desk.roles_enforced,
        "agent": desk.agent,
        "login": desk.login.user if desk.login else None,
    }
    print_status(
        doc,
        desk_name=desk.config.desk.name,
        home=desk.home,
        roles_note=desk.roles_note(),
        json_out=json_out,
    )


@quarantine_app.command("list")
def quarantine_list(
    ctx: typer.Context,
    json_out: JsonOut = False,
    csv_out: CsvOut = False,
    all_: bool = typer.Option(False, "--all", help="Include resolved entries."),
) -> None:
    """List quarantined messages with their reasons.

    Example: supportdesk quarantine list --json
    """
    from supportdesk.inbound.quarantine import list_entries

    desk = desk_of(ctx)
    rows = list_entries(desk, include_resolved=all_)
    if json_out:
        print_json(rows)
    elif csv_out:
        from supportdesk.inbound.quarantine import COLUMNS

        print_csv(rows, COLUMNS)
    else:
        print_table(
            rows,
            [("id", "#"), ("channel", "Channel"), ("source", "Source"), ("error", "Reason")],
            empty="Quarantine is empty.",
            max_width={"source": 40, "error": 60},
        )


@quarantine_app.command("show")
def quarantine_show(
    ctx: typer.Context,
    qid: int = typer.Argument(..., metavar="ID"),
    raw: bool = typer.Option(False, "--raw", help="Write the raw bytes to stdout."),
) -> None:
    """Show one quarantined message: its reason and (inert) raw text.

    Example: supportdesk quarantine show 3 --raw > broken.eml
    """
    import sys

    from supportdesk.inbound.quarantine import entry

    desk = desk_of(ctx)
    row, data = entry(desk, qid)
    if raw:
        sys.stdout.buffer.write(data)
        return
    con = console()
    con.print(
        inert(
            f"#{row['id']} from {row['source']} ({row['channel']}) at {row['created_at']}",
            one_line=True,
        )
    )
    con.print(inert(f"Reason: {row['error']}", one_line=True))
    con.print(inert(data[:4000].decode("utf-8", "replace")))


@quarantine_app.command("retry")
def quarantine_retry(
    ctx: typer.Context,
    ids: list[int] = typer.Argument(
        None, metavar="[ID]...", help="Entries to retry (default: all)."
    ),
    json_out: JsonOut = False,
) -> None:
    """Parse quarantined messages again and ingest those that now parse.

    Example: supportdesk quarantine retry 3 4
    """
    from supportdesk.inbound.importing import retry_quarantine

    desk = desk_of(ctx)
    summary = retry_quarantine(desk, list(ids) if ids else None)
    if json_out:
        print_json(summary.as_dict())
    else:
        console().print(
            f"Recovered {summary.imported}, duplicates {summary.duplicates}, still quarantined "
            f"{summary.quarantined}, unreadable raw files {summary.unreadable}."
        )


def _outbox_rows(rows: list[Any]) -> list[dict[str, Any]]:
    from supportdesk.core.text import iso

    return [
        {
            "id": r.id,
            "ticket_id": r.ticket_id,
            "channel": r.channel,
            "to": r.to_address,
            "state": r.state,
            "attempts": r.attempts,
            "next_attempt_at": iso(r.next_attempt_at),
            "last_error": r.last_error or None,
            "created_at": iso(r.created_at),
            "sent_at": iso(r.sent_at),
            "message_id": r.message_id,
        }
        for r in rows
    ]


@outbox_app.command("list")
def outbox_list(
    ctx: typer.Context,
    state_: list[str] = typer.Option(
        None,
        "--state",
        help="queued, sending, sent, failed, cancelled, in_doubt, dropped (repeatable).",
    ),
    json_out: JsonOut = False,
    csv_out: CsvOut = False,
    limit: int = typer.Option(200, "--limit", min=0, help="At most this many; 0 = all."),
) -> None:
    """The outbox with each item's state, attempts and last error. Items "in doubt" may or may
    not have arrived (the runner stopped in mid-send on a channel that cannot dedupe a resend):
    decide with `outbox resend ID` or `outbox drop ID`. The # column is the id those
    commands (and `outbox retry`, `outbox cancel`) take.

    Example: supportdesk outbox list --state in_doubt
    """
    from supportdesk.desk.desk import BadInput
    from supportdesk.outbound.outbox import STATES, list_outbox

    for s_ in state_ or []:
        if s_ not in STATES:
            raise BadInput(f"--state is one of {', '.join(STATES)}, not {s_!r}")
    desk = desk_of(ctx)
    with desk.db.read() as s:
        rows = _outbox_rows(list_outbox(s, states=list(state_ or []), limit=limit or None))
    limit_hint(len(rows), limit, "--limit N shows more, --limit 0 shows all.")
    if json_out:
        print_json(rows)
    elif csv_out:
        print_csv(rows, list(rows[0].keys()) if rows else ["id"])
    else:
        print_table(
            rows,
            [
                ("id", "#"),
                ("ticket_id", "Ticket"),
                ("channel", "Channel"),
                ("to", "To"),
                ("state", "State"),
                ("attempts", "Tries"),
                ("created_at", "Queued"),
                ("last_error", "Last error"),
            ],
            empty="The outbox is empty.",
            max_width={"last_error": 50, "to": 30},
            min_width={"id": 3, "ticket_id": 6, "state": 9, "created_at": 16},
        )


@outbox_app.command("retry")
def outbox_retry(ctx: typer.Context, ids: list[int] = typer.Argument(..., metavar="ID...")) -> None:
    """Queue failed items again (never one that was sent).

    Example: supportdesk outbox retry 12
    """
    from supportdesk.outbound.outbox import retry

    desk = desk_of(ctx)
    with desk.db.write() as s:
        for i in ids:
            retry(s, desk, i)
    console().print(f"Queued again: {', '.join(map(str, ids))}.")


@outbox_app.command("cancel")
def outbox_cancel(
    ctx: typer.Context, ids: list[int] = typer.Argument(..., metavar="ID...")
) -> None:
    """Cancel items not yet sent.

    Example: supportdesk outbox cancel 12
    """
    from supportdesk.outbound.outbox import cancel

    desk = desk_of(ctx)
    with desk.db.write() as s:
        for i in ids:
            cancel(s, desk, i)
    console().print(f"Cancelled: {', '.join(map(str, ids))}.")


@outbox_app.command("resend")
def outbox_resend(
    ctx: typer.Context, ids: list[int] = typer.Argument(..., metavar="ID...")
) -> None:
    """Send items in doubt again: you decided the customer did not get them.

    Example: supportdesk outbox resend 12
    """
    from supportdesk.outbound.outbox import resend

    desk = desk_of(ctx)
    with desk.db.write() as s:
        for i in ids:
            resend(s, desk, i)
    console().print(f"Sending again: {', '.join(map(str, ids))}.")


@outbox_app.command("drop")
def outbox_drop(ctx: typer.Context, ids: list[int] = typer.Argument(..., metavar="ID...")) -> None:
    """Leave items in doubt unsent: you decided the customer got them (or they are moot).

    Example: supportdesk outbox drop 12
    """
    from supportdesk.outbound.outbox import drop

    desk = desk_of(ctx)
    with desk.db.write() as s:
        for i in ids:
            drop(s, desk, i)
    console().print(f"Dropped: {', '.join(map(str, ids))}.")


def register(app: typer.Typer) -> None:
    app.command("init")(init_cmd)
    app.command("status")(status_cmd)
    app.add_typer(quarantine_app, name="quarantine")
    app.add_typer(outbox_app, name="outbox")
