"""`supportdesk templates ...`: canned replies with placeholders."""

from __future__ import annotations

from pathlib import Path

import typer

from supportdesk.cli.context import desk_of
from supportdesk.cli.options import CsvOut, JsonOut, stdin_or
from supportdesk.cli.output import console, inert, print_csv, print_json, print_table
from supportdesk.cli.triage import complete_template, open_editor

app = typer.Typer(
    help="Canned replies. Placeholders: {{ customer.name }}, {{ customer.first_name }}, {{ ticket.id }}, "
    "{{ ticket.subject }}, {{ agent.name }}, {{ desk.name }} and more; an unknown or empty one is an error.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _body(file: Path | None, text: str | None) -> str | None:
    from supportdesk.desk.desk import BadInput

    if file is not None and text is not None:
        raise BadInput("give --file or --text, not both")
    text = stdin_or(text)
    if file is not None and str(file) == "-":
        return stdin_or("-")
    if file is not None:
        try:
            return file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise BadInput(f"{file} is not UTF-8 text") from None
        except OSError as exc:
            raise BadInput(f"{file} cannot be read: {exc.strerror}") from None
    return text


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    json_out: JsonOut = False,
    csv_out: CsvOut = False,
) -> None:
    """List templates with their use counts.

    Example: supportdesk templates list --json
    """
    from supportdesk.replies.templates import template_rows

    desk = desk_of(ctx)
    rows = template_rows(desk)
    if json_out:
        print_json(rows)
    elif csv_out:
        print_csv(
            rows, ["name", "subject", "tags", "language", "usage_count", "created_at", "updated_at"]
        )
    else:
        print_table(
            rows,
            [
                ("name", "Name"),
                ("subject", "Subject"),
                ("tags", "Tags"),
                ("language", "Lang"),
                ("usage_count", "Used"),
            ],
            empty="No templates yet: supportdesk templates add NAME --text T",
            max_width={"subject": 40},
        )


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., autocompletion=complete_template),
    json_out: JsonOut = False,
) -> None:
    """Show a template's source.

    Example: supportdesk templates show printer-reset
    """
    from rich.text import Text

    from supportdesk.replies.templates import show_template

    desk = desk_of(ctx)
    row = show_template(desk, name)
    if json_out:
        print_json(row)
        return
    con = console()
    con.print(
        Text(
            inert(f"{row['name']}  (used {row['usage_count']} times)", one_line=True), style="bold"
        )
    )
    if row["subject"]:
        con.print(Text(inert(f"Subject: {row['subject']}", one_line=True)))
    con.print(Text(inert(row["body"])))


@app.command("add")
def add_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="e.g. printer-reset"),
    file: Path | None = typer.Option(None, "--file", "-f", help="Read the body from a file."),
    text: str | None = typer.Option(None, "--text", "-t", help="The body."),
    subject: str = typer.Option(
        "", "--subject", help="Subject for new conversations (placeholders allowed)."
    ),
    tags: str = typer.Option("", "--tags", help="Comma-separated."),
    language: str = typer.Option("", "--language", help="e.g. ru, en."),
) -> None:
    """Add a template.

    Example: supportdesk templates add printer-reset --text "Hello {{ customer.first_name }}, please restart the printer."
    """
    from supportdesk.desk.desk import BadInput
    from supportdesk.replies.templates import add_template

    body = _body(file, text)
    if body is None:
        raise BadInput("give --file or --text")
    desk = desk_of(ctx)
    add_template(desk, name, body, subject=subject, tags=tags, language=language)
    console().print(f"Template {name} added.")


@app.command("edit")
def edit_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., autocompletion=complete_template),
    file: Path | None = typer.Option(None, "--file", "-f", help="Read the new body from a file."),
    text: str | None = typer.Option(None, "--text", "-t", help="The new body."),
    editor: bool = typer.Option(False, "--editor", "-e", help="Edit the body in $EDITOR."),
    subject: str | None = typer.Option(None, "--subject"),
    tags: str | None = typer.Option(None, "--tags"),
    language: str | None = typer.Option(None, "--language"),
) -> None:
    """Change a template's body, subject, tags or language.

    Example: supportdesk templates edit printer-reset --editor
    """
    from supportdesk.desk.desk import BadInput
    from supportdesk.replies.templates import edit_template, show_template

    body = _body(file, text)
    desk = desk_of(ctx)
    if editor:
        if body is not None:
            raise BadInput("give --editor, --file or --text, not several")
        current = show_template(desk, name)["body"]
        body = open_editor(current)
    if body is None and subject is None and tags is None and language is None:
        raise BadInput(
            "nothing to change: give --file, --text, --editor, --subject, --tags or --language"
        )
    edit_template(desk, name, body=body, subject=subject, tags=tags, language=language)
    console().print(f"Template {name} saved.")


@app.command("rm")
def rm_cmd(
    ctx: typer.Context, name: str = typer.Argument(..., autocompletion=complete_template)
) -> None:
    """Delete a template (lead only).

    Example: supportdesk templates rm old-greeting
    """
    from supportdesk.replies.templates import remove_template

    desk = desk_of(ctx)
    remove_template(desk, name)
    console().print(f"Template {name} deleted.")


@app.command("render")
def render_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., autocompletion=complete_template),
    ticket: int = typer.Option(..., "--ticket", help="Fill the placeholders from this ticket."),
    json_out: JsonOut = False,
) -> None:
    """Render a template for a ticket (strict: an unknown or empty placeholder is an error).

    Example: supportdesk templates render printer-reset --ticket 42
    """
    from rich.text import Text

    from supportdesk.replies.templates import render_for_ticket

    desk = desk_of(ctx)
    subject, body = render_for_ticket(desk, name, ticket)
    if json_out:
        print_json({"name": name, "ticket": ticket, "subject": subject, "body": body})
    else:
        if subject:
            console().print(Text(inert(f"Subject: {subject}", one_line=True)))
        console().print(Text(inert(body)))


@app.command("import")
def import_cmd(
    ctx: typer.Context,
    folder: Path = typer.Argument(
        ..., metavar="DIR", help="A folder of NAME.md files with front matter."
    ),
    json_out: JsonOut = False,
) -> None:
    """Add or update templates from a folder of Markdown files (all or nothing).

    Example: supportdesk templates import ./templates
    """
    from supportdesk.replies.templates import import_dir

    desk = desk_of(ctx)
    out = import_dir(desk, folder)
    if json_out:
        print_json(out)
    else:
        console().print(
            f"Added {len(out['added'])}, updated {len(out['updated'])}, "
            f"unchanged {len(out['unchanged'])}."
        )


@app.command("export")
def export_cmd(
    ctx: typer.Context,
    folder: Path = typer.Argument(
        ..., metavar="DIR", help="Written as NAME.md files (created if missing)."
    ),
) -> None:
    """Write every template to a folder of Markdown files with front matter (for git).

    Example: supportdesk templates export ./templates
    """
    from supportdesk.replies.templates import export_dir

    desk = desk_of(ctx)
    written = export_dir(desk, folder)
    console().print(f"Wrote {len(written)} template(s) to {folder}.")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="templates")
