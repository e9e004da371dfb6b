"""Triage commands on the ``tickets`` app, and the top-level ``undo``.

Every command that changes tickets takes many IDs, or ``-`` to read IDs (or the JSON of
``tickets list --json``) from standard input, and ``--dry-run`` to see what would change.

Long because: the ticket commands a shift lives in (triage, thread repair, replies, hand-over,
undo) share their completion helpers and result printing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import typer

from supportdesk.cli.context import desk_of
from supportdesk.cli.options import DryRun, JsonOut, stdin_or
from supportdesk.cli.output import console, inert, print_json, print_table
from supportdesk.cli.tickets import app as tickets_app

IDS_HELP = "Ticket IDs, or - to read IDs or `tickets list --json` output from standard input."


# ---------------------------------------------------------------- completion


def complete_status(incomplete: str) -> list[str]:
    from supportdesk.core.terms import STATUSES

    return [s for s in STATUSES if s.startswith(incomplete)]


def complete_priority(incomplete: str) -> list[str]:
    from supportdesk.core.terms import PRIORITIES

    return [p for p in PRIORITIES if p.startswith(incomplete)]


def _completion_desk(ctx: typer.Context) -> Any:
    from supportdesk.desk.desk import open_desk

    root = ctx.find_root()
    home = root.params.get("home") or os.environ.get("SUPPORTDESK_HOME")
    return open_desk(Path(home) if home else None, db_url=root.params.get("db"))


def complete_agent(ctx: typer.Context, incomplete: str) -> list[str]:
    names = ["me", "none"]
    try:
        from supportdesk.people.agents import list_agents

        desk = _completion_desk(ctx)
        try:
            names += [a.name for a in list_agents(desk)]
        finally:
            desk.close()
    except Exception:  # completion must never fail loudly
        pass
    return [n for n in names if n.startswith(incomplete)]


def complete_group(ctx: typer.Context, incomplete: str) -> list[str]:
    try:
        from supportdesk.people.groups import list_groups

        desk = _completion_desk(ctx)
        try:
            names = [g["name"] for g in list_groups(desk)]
        finally:
            desk.close()
    except Exception:
        return []
    return [n for n in names if n.startswith(incomplete)]


def complete_template(ctx: typer.Context, incomplete: str) -> list[str]:
    try:
        from supportdesk.replies.templates import template_rows

        desk = _completion_desk(ctx)
        try:
            names = [t["name"] for t in template_rows(desk)]
        finally:
            desk.close()
    except Exception:
        return []
    return [n for n in names if n.startswith(incomplete)]


# ---------------------------------------------------------------- helpers


def _read_stdin() -> str:
    from supportdesk.desk.desk import BadInput

    if sys.stdin is None or (hasattr(sys.stdin, "isatty") and sys.stdin.isatty()):
        raise BadInput("'-' reads ticket IDs from standard input, but nothing is piped in")
    return sys.stdin.read()


def ticket_ids(args: list[str] | None) -> list[int]:
    from supportdesk.cli.stdin_ids import collect_ids

    return collect_ids(list(args or []), _read_stdin)


def _cell(v: Any) -> str:
    if v is None or v == "":
        return "-"
    if isinstance(v, list):
        return ", ".join(str(x) for x in v) or "-"
    return str(v)


def show_result(result: Any, json_out: bool) -> None:
    """Print an ActionResult: JSON for scripts, or a summary and a table of changes."""
    from rich.text import Text

    if json_out:
        print_json(result.as_dict())
        return
    con = console()
    rows = [
        {"target": f"{c.target} {'#' if c.target == 'ticket' else ''}{c.id}", "field": c.field,
         "before": _cell(c.before), "after": _cell(c.after)}
        for c in result.changes
    ]  # fmt: skip
    n = len(result.changed_tickets)
    n_cust = len({c.id for c in result.changes if c.target == "customer"})
    what = f"{n_cust} customer(s)" if n_cust and not n else f"{n} ticket(s)"
    if result.dry_run:
        line = f"Dry run: {result.description} would change {what}; nothing was changed."
    elif result.changes:
        line = f"Done: {result.description} ({what} changed). Undo with: supportdesk undo"
    else:
        line = f"Nothing to change: {result.description}."
    con.print(Text(inert(line, one_line=True)), soft_wrap=True)
    if rows:
        print_table(
            rows,
            [("target", "Target"), ("field", "Field"), ("before", "Before"), ("after", "After")],
            max_width={"before": 40, "after": 40},
        )
    if result.unchanged and result.changes:
        con.print(
            Text(
                inert(
                    f"Unchanged: {', '.join('#' + str(i) for i in result.unchanged[:20])}",
                    one_line=True,
                )
            )
        )


def open_editor(initial: str, *, suffix: str = ".md") -> str:
    """Let the user edit ``initial`` in their editor; an editor problem is bad input (exit 2)."""
    from supportdesk.core.editor import EditorError, edit_text
    from supportdesk.core.errors import BadInput

    try:
        return edit_text(initial, suffix=suffix)
    except EditorError as exc:
        raise BadInput(str(exc)) from None


# ---------------------------------------------------------------- commands


def assign_cmd(
    ctx: typer.Context,
    ids: list[str] = typer.Argument(..., metavar="ID...|-", help=IDS_HELP),
    to: str = typer.Option(
        ..., "--to", help="me, none, or an agent's name.", autocompletion=complete_agent
    ),
    dry_run: DryRun = False,
    json_out: JsonOut = False,
) -> None:
    """Assign tickets to yourself, an agent, or nobody.

    Example: supportdesk tickets list is:unassigned --json | supportdesk tickets assign - --to me
    """
    from supportdesk.tickets import triage

    show_result(triage.assign(desk_of(ctx), ticket_ids(ids), to, dry_run=dry_run), json_out)


def tag_cmd(
    ctx: typer.Context,
    ids: list[str] = typer.Argument(..., metavar="ID...|-", help=IDS_HELP),
    add: list[str] = typer.Option(
        None, "--add", "-a", help="Tag to add (repeatable, or comma-separated)."
    ),
    remove: list[str] = typer.Option(
        None, "--remove", "-r", help="Tag to remove (repeatable, or comma-separated)."
    ),
    dry_run: DryRun = False,
    json_out: JsonOut = False,
) -> None:
    """Add and remove tags.

    Example: supportdesk tickets list status:open printer --json | supportdesk tickets tag - --add hardware
    """
    from supportdesk.tickets import triage

    show_result(
        triage.tag(desk_of(ctx), ticket_ids(ids), add=add, remove=remove, dry_run=dry_run), json_out
    )


def set_cmd(
    ctx: typer.Context,
    ids: list[str] = typer.Argument(..., metavar="ID...|-", help=IDS_HELP),
    status: str | None = typer.Option(
        None,
        "--status",
        "-s",
        help="new, open, pending, solved or closed.",
        autocompletion=complete_status,
    ),
    priority: str | None = typer.Option(
        None,
        "--priority",
        "-p",
        help="low, normal, high or urgent.",
        autocompletion=complete_priority,
    ),
    dry_run: DryRun = False,
    json_out: JsonOut = False,
) -> None:
    """Set status and/or priority (pending pauses the SLA clock).

    Example: supportdesk tickets set 12 13 --status pending --priority high
    """
    from supportdesk.tickets import triage

    show_result(
        triage.set_fields(
            desk_of(ctx), ticket_ids(ids), status=status, priority=priority, dry_run=dry_run
        ),
        json_out,
    )


def close_cmd(
    ctx: typer.Context,
    ids: list[str] = typer.Argument(..., metavar="ID...|-", help=IDS_HELP),
    solved: bool = typer.Option(False, "--solved", help="Mark solved instead of closed."),
    dry_run: DryRun = False,
    json_out: JsonOut = False,
) -> None:
    """Close (or solve) tickets.

    Example: supportdesk tickets close 12 13 --solved
    """
    from supportdesk.tickets import triage

    show_result(
        triage.close(desk_of(ctx), ticket_ids(ids), solved=solved, dry_run=dry_run), json_out
    )


def reopen_cmd(
    ctx: typer.Context,
    ids: list[str] = typer.Argument(..., metavar="ID...|-", help=IDS_HELP),
    dry_run: DryRun = False,
    json_out: JsonOut = False,
) -> None:
    """Reopen solved or closed tickets.

    Example: supportdesk tickets reopen 12
    """
    from supportdesk.tickets import triage

    show_result(triage.reopen(desk_of(ctx), ticket_ids(ids), dry_run=dry_run), json_out)


def snooze_cmd(
    ctx: typer.Context,
    ids: list[str] = typer.Argument(..., metavar="ID...|-", help=IDS_HELP),
    until: str | None = typer.Option(
        None, "--until", "-u", help="2h, 3d, tomorrow, monday, or an ISO time (desk time zone)."
    ),
    wake: bool = typer.Option(False, "--wake", help="Clear the snooze now."),
    dry_run: DryRun = False,
    json_out: JsonOut = False,
) -> None:
    """Hide tickets from is:open views until a time.

    Example: supportdesk tickets snooze 12 --until tomorrow
    """
    from supportdesk.desk.desk import BadInput
    from supportdesk.tickets import snooze

    if wake == (until is not None):
        raise BadInput("give either --until TIME or --wake")
    desk = desk_of(ctx)
    when = snooze.parse_until(until, desk) if until is not None else None
    show_result(snooze.snooze(desk, ticket_ids(ids), when, dry_run=dry_run), json_out)


def merge_cmd(
    ctx: typer.Context,
    ids: list[str] = typer.Argument(..., metavar="ID...|-", help="Tickets to merge (they close)."),
    into: int = typer.Option(..., "--into", help="The ticket that receives the messages."),
    different_customers: bool = typer.Option(
        False,
        "--different-customers",
        help="Confirm merging tickets of different customers (replies then go to whoever "
        "wrote the message answered).",
    ),
    dry_run: DryRun = False,
    json_out: JsonOut = False,
) -> None:
    """Merge tickets into another: messages and tags move, the merged ones close (lead only).

    Tickets of different customers merge only with --different-customers.

    Example: supportdesk tickets merge 14 15 --into 12
    """
    from supportdesk.desk.desk import Conflict
    from supportdesk.tickets import repair

    try:
        result = repair.merge(
            desk_of(ctx),
            ticket_ids(ids),
            into,
            dry_run=dry_run,
            different_customers=different_customers,
        )
    except Conflict as exc:
        if "different customers" in str(exc):
            raise Conflict(f"{exc} (add --different-customers)") from None
        raise
    show_result(result, json_out)


def split_cmd(
    ctx: typer.Context,
    message_ids: list[int] = typer.Argument(
        ..., metavar="MESSAGE_ID...", help="Messages to split off (ids from tickets show --json)."
    ),
    subject: str | None = typer.Option(None, "--subject", help="Subject of the new ticket."),
    dry_run: DryRun = False,
    json_out: JsonOut = False,
) -> None:
    """Split messages off into a new ticket of the same customer.

    Example: supportdesk tickets split 311 --subject "Second question: invoices"
    """
    from supportdesk.tickets import repair

    show_result(
        repair.split(desk_of(ctx), list(message_ids), subject=subject, dry_run=dry_run), json_out
    )


def move_cmd(
    ctx: typer.Context,
    message_ids: list[int] = typer.Argument(..., metavar="MESSAGE_ID...", help="Messages to move."),
    to: int = typer.Option(..., "--to", help="The ticket that receives them."),
    dry_run: DryRun = False,
    json_out: JsonOut = False,
) -> None:
    """Move messages to another ticket (a message that joined the wrong thread).

    Example: supportdesk tickets move 311 312 --to 40
    """
    from supportdesk.tickets import repair

    show_result(repair.move(desk_of(ctx), list(message_ids), to, dry_run=dry_run), json_out)


def escalate_cmd(
    ctx: typer.Context,
    ids: list[str] = typer.Argument(..., metavar="ID...|-", help=IDS_HELP),
    to: str = typer.Option(
        ...,
        "--to",
        help="The group (line or team), e.g. second-line.",
        autocompletion=complete_group,
    ),
    note: str = typer.Option("", "--note", help="Why: added as an internal note."),
    dry_run: DryRun = False,
    json_out: JsonOut = False,
) -> None:
    """Move tickets to another group with an internal note.

    Example: supportdesk tickets escalate 12 --to second-line --note "Needs a database fix"
    """
    from supportdesk.people import groups

    show_result(
        groups.escalate(desk_of(ctx), ticket_ids(ids), to, note=note, dry_run=dry_run), json_out
    )


def handover_cmd(
    ctx: typer.Context,
    from_: str = typer.Option(
        ..., "--from", help="The agent going off shift.", autocompletion=complete_agent
    ),
    to: str = typer.Option(
        ..., "--to", help="The agent taking over.", autocompletion=complete_agent
    ),
    note: str = typer.Option("", "--note", help="Added to every ticket as an internal note."),
    dry_run: DryRun = False,
    json_out: JsonOut = False,
) -> None:
    """Hand every open ticket of one agent to another, each with a note.

    Example: supportdesk tickets handover --from alice --to bob --note "Waiting on the vendor for #12"
    """
    from supportdesk.people import groups

    show_result(groups.handover(desk_of(ctx), from_, to, note=note, dry_run=dry_run), json_out)


def _reply(
    ctx: typer.Context,
    ticket_id: int,
    text: str | None,
    template: str | None,
    editor: bool,
    note: bool,
    attach: list[Path] | None,
    channel: str | None,
    json_out: bool,
    approved: str | None = None,
    params: list[str] | None = None,
    cc: list[str] | None = None,
    bcc: list[str] | None = None,
    reply_all: bool = False,
    status: str | None = None,
) -> None:
    from supportdesk.desk.desk import BadInput
    from supportdesk.tickets import replying

    text = stdin_or(text)
    if note and (cc or bcc or reply_all):
        raise BadInput("a note is never sent, so it has no Cc, Bcc or reply-all")

    if text is not None and template is not None:
        raise BadInput("give --text or --template, not both")
    if approved and (template is not None or editor):
        raise BadInput(
            "an approved template is sent as it is: give --approved without --template or --editor"
        )
    if text is None and template is None and not editor and not approved:
        raise BadInput(
            "give --text, --template or --editor (--approved: a provider-approved template)"
        )
    desk = desk_of(ctx)
    if not note and not approved:
        from supportdesk.outbound.window import window_notice

        # say so before the agent writes: outside the window only a template can go out
        closed = window_notice(desk, ticket_id, channel)
        if closed:
            raise BadInput(closed.rstrip(".") + "; give --approved NAME")
    if editor:
        from supportdesk.tickets import collisions

        seen = collisions.newest_message_id(desk, ticket_id)
        from supportdesk.replies.templates import fill_for_ticket, unfilled

        initial = text or (fill_for_ticket(desk, template, ticket_id)[0] if template else "")
        text = open_editor(initial)
        # the customer may have written again while the reply was being drafted
        while text.strip() and not note:
            newer = collisions.newer_customer_messages(desk, ticket_id, seen)
            seen = collisions.newest_message_id(desk, ticket_id)
            if not newer or _send_anyway(newer):
                break
            text = open_editor(text)  # revise the draft after reading them
        if not text.strip():
            raise BadInput("the reply is empty; nothing was sent")
        left = unfilled(text)
        if left and not note:
            raise BadInput(f"fill in {', '.join(left)} before sending; nothing was sent")
    msg = replying.reply(
        desk,
        ticket_id,
        text=text,
        template=template if text is None else None,
        note=note,
        attachments=list(attach or []),
        channel=channel,
        approved_template=approved,
        template_params=list(params or []),
        cc=list(cc or []),
        bcc=list(bcc or []),
        reply_all=reply_all,
        status=status,
    )
    if text is not None and template is not None:
        from supportdesk.replies.templates import count_use

        count_use(desk, template)
    if json_out:
        print_json(
            {
                "ticket": ticket_id,
                "message": msg.id,
                "direction": msg.direction,
                "channel": msg.channel,
            }
        )
    elif note:
        console().print(f"Note added to #{ticket_id} (message {msg.id}).")
    else:
        console().print(f"Reply to #{ticket_id} queued (message {msg.id}); the runner sends it.")


def _send_anyway(newer: list[Any]) -> bool:
    """Show the customer's messages that arrived while drafting; ask whether to send anyway."""
    err = console(stderr=True)
    err.print(f"The customer wrote {len(newer)} new message(s) while you were writing:")
    for m in newer:
        err.print(f"  {m.created_at:%Y-%m-%d %H:%M} {inert(m.author, one_line=True)}:")
        err.print("    " + inert(m.text.strip()[:500]).replace("\n", "\n    "))
    return typer.confirm("Send your reply anyway? (no: edit it again)", default=False, err=True)


def reply_cmd(
    ctx: typer.Context,
    ticket_id: int = typer.Argument(..., metavar="ID", help="The ticket."),
    text: str | None = typer.Option(None, "--text", "-t", help="The reply text."),
    template: str | None = typer.Option(
        None, "--template", help="A template to render.", autocompletion=complete_template
    ),
    editor: bool = typer.Option(
        False, "--editor", "-e", help="Write in $EDITOR (starts from the template)."
    ),
    note: bool = typer.Option(False, "--note", help="An internal note, not sent to the customer."),
    attach: list[Path] = typer.Option(None, "--attach", help="A file to attach (repeatable)."),
    channel: str | None = typer.Option(
        None, "--channel", help="Answer on another configured channel."
    ),
    approved: str | None = typer.Option(
        None,
        "--approved",
        help="Send a provider-approved message template (WhatsApp after its 24-hour window).",
    ),
    param: list[str] = typer.Option(
        None, "--param", help="A value for the approved template's placeholders (repeatable)."
    ),
    cc: list[str] = typer.Option(None, "--cc", help="Also to this address, visibly (repeatable)."),
    bcc: list[str] = typer.Option(None, "--bcc", help="Also to this address, hidden (repeatable)."),
    reply_all: bool = typer.Option(
        False, "--reply-all", help="Cc everyone else on the thread (the mails' To and Cc)."
    ),
    status: str | None = typer.Option(
        None, "--status", help="Then set the ticket pending or solved (send and solve)."
    ),
    json_out: JsonOut = False,
) -> None:
    """Queue a reply (or an internal note) in the outbox.

    Example: supportdesk tickets reply 42 --template printer-reset --reply-all --cc boss@acme.test
    """
    _reply(ctx, ticket_id, text, template, editor, note, attach, channel, json_out, approved, param,
           cc, bcc, reply_all, status)  # fmt: skip


def forward_cmd(
    ctx: typer.Context,
    ticket_id: int = typer.Argument(..., metavar="ID", help="The ticket."),
    to: str = typer.Option(..., "--to", help="The address to forward to."),
    message: int | None = typer.Option(
        None, "--message", help="Only this message (its id in tickets show --json); default: all."
    ),
    text: str | None = typer.Option(None, "--text", "-t", help="A few words above the forward."),
    cc: list[str] = typer.Option(None, "--cc", help="Also to this address (repeatable)."),
    json_out: JsonOut = False,
) -> None:
    """Forward a message, or the whole ticket, with its attachments; recorded in the thread.

    Example: supportdesk tickets forward 42 --to accountant@acme.test --text "Please check the invoice"
    """
    from supportdesk.tickets import outgoing

    msg = outgoing.forward(desk_of(ctx), ticket_id, to=to, message_id=message, text=text,
                         cc=list(cc or []))  # fmt: skip
    if json_out:
        print_json({"ticket": ticket_id, "message": msg.id, "direction": msg.direction,
                    "channel": msg.channel, "to": msg.to_addresses})  # fmt: skip
    else:
        console().print(
            f"Forward of #{ticket_id} to {msg.to_addresses} queued (message {msg.id}); "
            "the runner sends it."
        )


def note_cmd(
    ctx: typer.Context,
    ticket_id: int = typer.Argument(..., metavar="ID", help="The ticket."),
    text: str | None = typer.Option(None, "--text", "-t", help="The note."),
    editor: bool = typer.Option(False, "--editor", "-e", help="Write in $EDITOR."),
    json_out: JsonOut = False,
) -> None:
    """Add an internal note (never sent to the customer).

    Example: supportdesk tickets note 42 --text "Called the customer, waiting for logs"
    """
    _reply(ctx, ticket_id, text, None, editor, True, None, None, json_out)


def new_cmd(
    ctx: typer.Context,
    customer: str = typer.Option(
        ..., "--customer", "-c", help="E-mail address, customer id, @username, or phone number."
    ),
    via: str = typer.Option(
        ..., "--via", help="A configured channel type (email, telegram...) or phone."
    ),
    subject: str | None = typer.Option(
        None, "--subject", help="The subject (a template's subject otherwise)."
    ),
    text: str | None = typer.Option(
        None, "--text", "-t", help="The message (for phone: your call notes)."
    ),
    template: str | None = typer.Option(
        None, "--template", help="A template to render.", autocompletion=complete_template
    ),
    channel: str | None = typer.Option(
        None, "--channel", help="Which configured channel (default: the first)."
    ),
    json_out: JsonOut = False,
) -> None:
    """Start a conversation: e-mail, Telegram (a customer who wrote to the bot), or log a phone call.

    Example: supportdesk tickets new --customer ann@example.com --via email --subject "Your order" --text "Hello Ann"
    """
    from supportdesk.desk.desk import BadInput
    from supportdesk.tickets import outgoing

    if text is not None and template is not None:
        raise BadInput("give --text or --template, not both")
    res = outgoing.new_ticket(
        desk_of(ctx),
        customer=customer,
        via=via,
        subject=subject,
        text=stdin_or(text),
        template=template,
        channel=channel,
    )
    if json_out:
        print_json(
            {
                "ticket": res.ticket_id,
                "message": res.message_id,
                "customer": res.customer_id,
                "queued": res.queued,
            }
        )
    else:
        tail = "; the message is queued" if res.queued else "; the call is logged"
        console().print(f"Ticket #{res.ticket_id} created for customer {res.customer_id}{tail}.")


def undo_cmd(
    ctx: typer.Context,
    list_: bool = typer.Option(
        False, "--list", help="Show your recent actions instead of undoing."
    ),
    agent: str | None = typer.Option(
        None, "--agent", help="Undo this agent's last action instead of yours (lead only)."
    ),
    dry_run: DryRun = False,
    json_out: JsonOut = False,
) -> None:
    """Revert your own last action exactly (refuses if a ticket changed since).

    Only your own actions: another agent's needs --agent NAME and the lead role.

    Example: supportdesk undo --dry-run
    """
    from rich.text import Text

    from supportdesk.actions import journal
    from supportdesk.core.text import iso

    desk = desk_of(ctx)
    if list_:
        rows = journal.recent(desk, desk.agent)
        if json_out:
            print_json(rows)
        else:
            print_table(
                rows,
                [("created_at", "When"), ("action", "Action"), ("undone_at", "Undone")],
                empty="No actions yet.",
                max_width={"action": 60},
            )
        return
    res = journal.undo(desk, of=agent, dry_run=dry_run)
    if json_out:
        print_json(res.as_dict())
        return
    whose = "your" if res.agent == desk.agent else f"{res.agent}'s"
    when = iso(res.created_at) or ""
    tickets = ", ".join(f"#{t}" for t in res.tickets[:10]) or "-"
    verb = "Would undo" if res.dry_run else "Undone"
    console().print(
        Text(
            inert(
                f"{verb} {whose} action of {when}: {res.description} (tickets {tickets}).",
                one_line=True,
            )
        )
    )


def register(app: typer.Typer) -> None:
    tickets_app.command("assign")(assign_cmd)
    tickets_app.command("tag")(tag_cmd)
    tickets_app.command("set")(set_cmd)
    tickets_app.command("close")(close_cmd)
    tickets_app.command("reopen")(reopen_cmd)
    tickets_app.command("snooze")(snooze_cmd)
    tickets_app.command("merge")(merge_cmd)
    tickets_app.command("split")(split_cmd)
    tickets_app.command("move")(move_cmd)
    tickets_app.command("escalate")(escalate_cmd)
    tickets_app.command("handover")(handover_cmd)
    tickets_app.command("reply")(reply_cmd)
    tickets_app.command("forward")(forward_cmd)
    tickets_app.command("note")(note_cmd)
    tickets_app.command("new")(new_cmd)
    app.command("undo")(undo_cmd)
