"""`supportdesk rules ...`, `supportdesk spam ...` and `supportdesk tickets macro`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import typer

from supportdesk.cli.context import desk_of
from supportdesk.cli.output import console, print_json, print_table
from supportdesk.core.text import inert

app = typer.Typer(
    help="Automation rules: files under HOME/rules/*.toml ([[rule]] and [[macro]] tables).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
spam_app = typer.Typer(
    help="Spam: tickets, senders and domains (no acknowledgement, out of queue and metrics).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _since(text: str) -> timedelta:
    from supportdesk.desk.desk import BadInput

    m = re.fullmatch(r"\s*(\d{1,6})\s*(m|h|d|w)\s*", text or "")
    if not m:
        raise BadInput(f"since: {text!r} is not an age such as 7d, 12h or 2w")
    n, unit = int(m.group(1)), m.group(2)
    return {"m": timedelta(minutes=n), "h": timedelta(hours=n), "d": timedelta(days=n)}.get(
        unit, timedelta(weeks=n)
    )


def _until(text: str) -> datetime:
    from supportdesk.desk.desk import BadInput

    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"until: {text!r} is not a date or time such as 2026-11-25T09:00") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _line(text: str) -> None:
    from rich.text import Text  # here: `--help` builds this module without rich

    console().print(Text(inert(text, one_line=True)), soft_wrap=True)


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="One JSON array on stdout."),
) -> None:
    """List the rules and macros, with their triggers and whether they are on.

    Example: supportdesk rules list
    """
    from supportdesk.automation.rules import load_rules

    desk = desk_of(ctx)
    rs = load_rules(desk.home)
    rows = [r.as_dict() for r in rs.rules]
    if json_out:
        print_json(rows + [{"macro": True, **m.as_dict()} for m in rs.macros])
        return
    print_table(
        [
            {
                "name": r["name"],
                "on": "on" if r["enabled"] else "off",
                "trigger": r["trigger"],
                "if": r["if"] or "-",
                "then": "; ".join(a.describe() for a in rs.rule(r["name"]).actions),
            }
            for r in rows
        ],
        [("name", "Rule"), ("on", "On"), ("trigger", "When"), ("if", "If"), ("then", "Then")],
        empty=f"No rules yet: add [[rule]] tables to {desk.home / 'rules'}/*.toml",
    )
    if rs.macros:
        print_table(
            [
                {
                    "name": m.name,
                    "key": m.key or "-",
                    "then": "; ".join(a.describe() for a in m.actions),
                }
                for m in rs.macros
            ],
            [("name", "Macro"), ("key", "Key"), ("then", "Then")],
        )


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The rule's name."),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Show one rule: where it is written, its trigger, condition and actions.

    Example: supportdesk rules show route-billing
    """
    from supportdesk.automation.rules import load_rules

    desk = desk_of(ctx)
    r = load_rules(desk.home).rule(name)
    if json_out:
        print_json(r.as_dict())
        return
    _line(f"rule {r.name} ({'on' if r.enabled else 'off'}), {r.path}:{r.line}")
    _line(f"when {r.trigger_text()}")
    _line(f"if   {r.condition or '(every ticket)'}")
    for a in r.actions:
        _line(f"then {a.describe()}")


@app.command("check")
def check_cmd(ctx: typer.Context) -> None:
    """Load and validate every rule file; errors name the file and line.

    Example: supportdesk rules check
    """
    from supportdesk.automation.rules import load_rules

    desk = desk_of(ctx)
    rs = load_rules(desk.home)
    _line(f"{len(rs.rules)} rule(s) and {len(rs.macros)} macro(s) are valid.")


@app.command("test")
def test_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The rule's name."),
    since: str = typer.Option("7d", "--since", help="How far back to replay: 12h, 7d, 2w."),
    until: str | None = typer.Option(
        None, "--until", help="Replay up to this moment (ISO date or time; default now)."
    ),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Replay a rule over real history and print, ticket by ticket, what it would have done.

    Nothing is changed: the actions run inside a transaction that is rolled back.

    Example: supportdesk rules test route-billing --since 7d
    """
    from supportdesk.automation.engine import render_simulation, simulate

    desk = desk_of(ctx)
    sim = simulate(desk, name, _since(since), now=_until(until) if until else None)
    if json_out:
        print_json(sim.as_dict())
        return
    for line in render_simulation(sim, desk.config.desk.timezone).splitlines():
        _line(line)


def _switch(ctx: typer.Context, name: str, on: bool) -> None:
    from supportdesk.automation.rules import set_enabled

    desk = desk_of(ctx)
    r = set_enabled(desk.home, name, on)
    _line(f"Rule {r.name} is {'on' if on else 'off'} ({r.path}).")


@app.command("enable")
def enable_cmd(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Switch a rule on (writes enabled = true into its file).

    Example: supportdesk rules enable route-billing
    """
    _switch(ctx, name, True)


@app.command("disable")
def disable_cmd(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Switch a rule off (writes enabled = false into its file).

    Example: supportdesk rules disable route-billing
    """
    _switch(ctx, name, False)


@app.command("undo")
def undo_cmd(ctx: typer.Context, name: str = typer.Argument(..., help="The rule's name.")) -> None:
    """Undo the rule's most recent firing (like supportdesk undo --as rule:NAME).

    Example: supportdesk rules undo route-billing
    """
    from dataclasses import replace

    from supportdesk.actions import journal

    desk = desk_of(ctx)
    res = journal.undo(replace(desk, agent=f"rule:{name}"))
    shown = ", ".join(f"#{t}" for t in res.tickets) or "nothing"
    _line(f"Undone: {res.description} ({shown}).")


@app.command("run")
def run_cmd(ctx: typer.Context) -> None:
    """Run one automation pass now (what the runner's timer does every few seconds).

    Example: supportdesk rules run
    """
    from supportdesk.automation import engine

    desk = desk_of(ctx)
    rep = engine.tick(desk)
    for rule, tid, lines in rep.fired:
        _line(f"{rule} on #{tid}: {'; '.join(lines)}")
    for rule, tid, err in rep.failed:
        _line(f"{rule} on #{tid} failed: {err}")
    _line(
        f"{len(rep.fired)} firing(s), {len(rep.failed)} failure(s), "
        f"{rep.notifications} notification(s)."
    )


# ---------------------------------------------------------------- spam


@spam_app.command("mark")
def spam_mark(
    ctx: typer.Context,
    ids: list[str] = typer.Argument(..., help="Ticket IDs, or - to read them from stdin."),
    sender: bool = typer.Option(False, "--sender", help="Also list the sender as spam."),
    domain: bool = typer.Option(False, "--domain", help="Also list the sender's domain as spam."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change."),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Mark tickets spam: closed, out of the queue and the metrics; undo restores them.

    Example: supportdesk spam mark 12 13 --domain
    """
    from supportdesk.automation import spam
    from supportdesk.cli.triage import show_result, ticket_ids

    desk = desk_of(ctx)
    show_result(
        spam.mark(desk, ticket_ids(ids), sender=sender, domain=domain, dry_run=dry_run), json_out
    )


@spam_app.command("unmark")
def spam_unmark(
    ctx: typer.Context,
    ids: list[str] = typer.Argument(..., help="Ticket IDs, or - to read them from stdin."),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Take the spam mark off tickets (they reopen).

    Example: supportdesk spam unmark 12
    """
    from supportdesk.automation import spam
    from supportdesk.cli.triage import show_result, ticket_ids

    desk = desk_of(ctx)
    show_result(spam.unmark(desk, ticket_ids(ids)), json_out)


@spam_app.command("add")
def spam_add(
    ctx: typer.Context,
    entry: str = typer.Argument(..., help="An e-mail address or @domain."),
) -> None:
    """List a sender or domain as spam, and mark its open tickets spam (undoable).

    Example: supportdesk spam add @spam.example
    """
    from supportdesk.automation import spam

    desk = desk_of(ctx)
    res = spam.list_and_sweep(desk, entry)
    n = len(res.changed_tickets)
    _line(f"Listed {entry.strip().lower()} as spam; {n} open ticket(s) marked spam.")


@spam_app.command("rm")
def spam_rm(
    ctx: typer.Context,
    entry: str = typer.Argument(..., help="An e-mail address or @domain."),
) -> None:
    """Take a sender or domain off the spam list.

    Example: supportdesk spam rm @spam.example
    """
    from supportdesk.automation import spam

    desk = desk_of(ctx)
    _line(f"{spam.unlist(desk, entry)} is no longer listed as spam.")


@spam_app.command("list")
def spam_list(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="One JSON array on stdout."),
) -> None:
    """The senders and domains listed as spam.

    Example: supportdesk spam list --json
    """
    from supportdesk.automation import spam

    desk = desk_of(ctx)
    with desk.db.read() as s:
        rows = [e.__dict__ for e in spam.list_entries(s)]
    if json_out:
        print_json(rows)
        return
    print_table(
        rows, [("entry", "Sender or domain"), ("by", "By"), ("at", "When")], empty="No spam listed."
    )


# ---------------------------------------------------------------- macros


def macro_cmd(
    ctx: typer.Context,
    ticket: int = typer.Argument(..., help="The ticket ID."),
    name: str = typer.Argument(..., help="The macro's name (see rules list)."),
    dry_run: bool = typer.Option(
        False, "--dry-run", "--preview", help="Show what it would do, reply text included."
    ),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Run a macro (a reply template, status, tags... in one go) on a ticket.

    Example: supportdesk tickets macro 12 refund-done --preview
    """
    from supportdesk.automation.macros import run_macro
    from supportdesk.cli.triage import show_result

    desk = desk_of(ctx)
    run = run_macro(desk, ticket, name, dry_run=dry_run)
    if json_out:
        print_json({**run.result.as_dict(), "done": run.lines, "reply": run.reply_text})
        return
    for line in run.lines:
        _line(("would " if dry_run else "") + line)
    if run.reply_text and dry_run:
        from rich.text import Text  # here: `--help` builds this module without rich

        console().print(Text("--- reply ---\n" + inert(run.reply_text)))
    show_result(run.result, False)


def register(root: typer.Typer) -> None:
    from supportdesk.cli.tickets import app as tickets_app

    root.add_typer(app, name="rules")
    root.add_typer(spam_app, name="spam")
    tickets_app.command("macro")(macro_cmd)
