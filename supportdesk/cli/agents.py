"""`supportdesk agents ...` and `supportdesk groups ...`: who works the desk, in which line."""

from __future__ import annotations

import typer

from supportdesk.cli.context import desk_of
from supportdesk.cli.options import CsvOut, JsonOut
from supportdesk.cli.output import console, print_csv, print_json, print_table
from supportdesk.cli.triage import complete_agent, complete_group

app = typer.Typer(
    help="Agents and their roles (agent, lead).", no_args_is_help=True, rich_markup_mode=None
)
groups_app = typer.Typer(
    help="Groups: lines and teams (first-line, second-line, billing).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def complete_role(incomplete: str) -> list[str]:
    return [r for r in ("agent", "lead") if r.startswith(incomplete)]


@app.command("add")
def add_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The login name (what --as and SUPPORTDESK_AGENT use)."),
    role: str = typer.Option(
        "agent", "--role", help="agent or lead.", autocompletion=complete_role
    ),
    display_name: str = typer.Option("", "--display-name", help="The name customers see."),
    email: str | None = typer.Option(None, "--email"),
    group: str | None = typer.Option(
        None, "--group", help="Their line or team (created if new).", autocompletion=complete_group
    ),
) -> None:
    """Add an agent (a lead's job once the desk has agents).

    Example: supportdesk agents add bob --role agent --display-name "Bob Smith" --group first-line
    """
    from supportdesk.people.agents import add_agent

    desk = desk_of(ctx)
    a = add_agent(desk, name, role=role, display_name=display_name, email=email, group=group)
    why = " (the first agent of a desk is a lead)" if a.role != role else ""
    console().print(f"Agent {a.name} added as {a.role}{why}.")


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    json_out: JsonOut = False,
    csv_out: CsvOut = False,
    all_: bool = typer.Option(False, "--all", help="Include inactive agents."),
) -> None:
    """List agents with their roles and groups.

    Example: supportdesk agents list --json
    """
    from supportdesk.people.agents import agent_rows, list_agents

    desk = desk_of(ctx)
    rows = agent_rows(list_agents(desk, include_inactive=all_))
    if json_out:
        print_json(rows)
    elif csv_out:
        print_csv(rows, ["name", "display_name", "role", "email", "group", "active", "created_at"])
    else:
        print_table(
            rows,
            [
                ("name", "Name"),
                ("display_name", "Display name"),
                ("role", "Role"),
                ("group", "Group"),
                ("email", "E-mail"),
                ("active", "Active"),
            ],
            empty="No agents yet: supportdesk agents add NAME --role lead",
        )


@app.command("edit")
def edit_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., autocompletion=complete_agent),
    role: str | None = typer.Option(None, "--role", autocompletion=complete_role),
    display_name: str | None = typer.Option(None, "--display-name"),
    email: str | None = typer.Option(None, "--email"),
    group: str | None = typer.Option(
        None, "--group", help="A group, or none.", autocompletion=complete_group
    ),
    active: bool | None = typer.Option(None, "--active/--inactive"),
    signature: str | None = typer.Option(
        None,
        "--signature",
        help='Added under this agent\'s replies ("" removes it; \\n breaks lines).',
    ),
    lang: str = typer.Option("en", "--lang", help="The signature's language: en or ru."),
    notify: list[str] | None = typer.Option(
        None,
        "--notify",
        help="Where notifications go (repeatable): telegram:CHAT_ID, email:ADDR or an apprise "
        "URL such as ntfy://host/topic; 'none' clears.",
    ),
    quiet: str | None = typer.Option(
        None, "--quiet", help="Quiet hours in desk time, e.g. 22:00-08:00 ('none' ends them)."
    ),
    shift: str | None = typer.Option(
        None, "--shift", help="Working hours for routing, e.g. 'mon-fri 09:00-18:00' ('none')."
    ),
    notify_on: list[str] | None = typer.Option(
        None,
        "--notify-on",
        help="Events to be told about (repeatable): assigned, answered, mention, sla_due, "
        "breached, rule.",
    ),
    sla_minutes: int | None = typer.Option(
        None, "--sla-minutes", help="Tell me this many minutes before a deadline of mine."
    ),
) -> None:
    """Change an agent (role and other agents: lead only), and where they are notified.

    Example: supportdesk agents edit bob --notify telegram:5550001 --quiet 22:00-08:00
    """
    from supportdesk.people.agents import edit_agent

    desk = desk_of(ctx)
    fields = (role, display_name, email, group, active, signature)
    own = (notify, quiet, shift, notify_on, sla_minutes)
    if any(v is not None for v in fields) or all(v is None for v in own):
        a = edit_agent(
            desk,
            name,
            role=role,
            display_name=display_name,
            email=email,
            group=group,
            active=active,
            signature=signature,
            signature_lang=lang,
        )
        console().print(
            f"Agent {a.name}: {a.role}, group {a.group or '-'}, "
            f"{'active' if a.active else 'inactive'}."
        )
    if any(v is not None for v in own):
        from supportdesk.automation import settings as agent_settings

        st = agent_settings.edit_for(
            desk,
            name,
            notify=notify,
            quiet=quiet,
            shift=shift,
            events=notify_on,
            sla_minutes=sla_minutes,
        )
        targets = ", ".join(agent_settings.redact(u) for u in st.notify) or "nowhere"
        console().print(
            f"Agent {name} is notified at {targets}"
            + (f", quiet {st.quiet}" if st.quiet else "")
            + (f", shift {st.shift}" if st.shift else "")
            + "."
        )


@app.command("rm")
def rm_cmd(
    ctx: typer.Context, name: str = typer.Argument(..., autocompletion=complete_agent)
) -> None:
    """Deactivate an agent; their history stays (lead only).

    Example: supportdesk agents rm bob
    """
    from supportdesk.people.agents import remove_agent

    desk = desk_of(ctx)
    remove_agent(desk, name)
    console().print(f"Agent {name} deactivated.")


@groups_app.command("list")
def groups_list(
    ctx: typer.Context,
    json_out: JsonOut = False,
    csv_out: CsvOut = False,
) -> None:
    """List groups with their agents and open tickets.

    Example: supportdesk groups list --json
    """
    from supportdesk.people.groups import list_groups

    desk = desk_of(ctx)
    rows = list_groups(desk)
    if json_out:
        print_json(rows)
    elif csv_out:
        print_csv(rows, ["name", "title", "description", "open_tickets", "agents", "created_at"])
    else:
        print_table(
            rows,
            [("name", "Group"), ("title", "Title"), ("agents", "Agents"), ("open_tickets", "Open")],
            empty="No groups yet: supportdesk groups add second-line",
        )


@groups_app.command("add")
def groups_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="e.g. second-line"),
    title: str = typer.Option("", "--title", help='e.g. "Second line".'),
    description: str = typer.Option("", "--description"),
) -> None:
    """Add a group (a line or a team).

    Example: supportdesk groups add billing --title "Billing team"
    """
    from supportdesk.people.groups import add_group

    desk = desk_of(ctx)
    add_group(desk, name, title=title, description=description)
    console().print(f"Group {name} added.")


@groups_app.command("rm")
def groups_rm(
    ctx: typer.Context, name: str = typer.Argument(..., autocompletion=complete_group)
) -> None:
    """Delete an unused group (lead only).

    Example: supportdesk groups rm billing
    """
    from supportdesk.people.groups import remove_group

    desk = desk_of(ctx)
    remove_group(desk, name)
    console().print(f"Group {name} deleted.")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="agents")
    root.add_typer(groups_app, name="groups")
