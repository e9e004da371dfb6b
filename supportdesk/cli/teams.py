"""Commands for teams: move a desk to PostgreSQL, back a desk up."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from supportdesk.cli.context import desk_of
from supportdesk.cli.options import JsonOut
from supportdesk.cli.output import console, inert, print_json, print_table


def migrate_to_cmd(
    ctx: typer.Context,
    url: str = typer.Argument(
        ..., metavar="URL", help="An empty PostgreSQL database: postgresql+psycopg://user@host/db"
    ),
    json_out: JsonOut = False,
) -> None:
    """Copy this SQLite desk into an empty PostgreSQL database, with nothing lost.

    Every table is copied with its ids, the id sequences are reset, the search index is rebuilt
    and each table's row count is checked before the copy commits. The SQLite file is left as it
    was. Afterwards set database_url in config.toml (or pass --db) to use the new database.

    Example: supportdesk migrate-to postgresql+psycopg://desk@db.example/desk
    """
    from supportdesk.team.move import migrate_to

    desk = desk_of(ctx)
    show = not json_out and sys.stderr.isatty()

    def progress(table: str, rows: int) -> None:
        if show:
            sys.stderr.write(f"\r{table}: {rows} rows\x1b[K")
            sys.stderr.flush()

    report = migrate_to(desk, url, progress=progress)
    if show:
        sys.stderr.write("\r\x1b[K")
    if json_out:
        print_json(report.as_dict())
        return
    rows = [t for t in report.as_dict()["tables"] if t["source_rows"]]
    print_table(
        rows,
        [("table", "Table"), ("source_rows", "SQLite rows"), ("copied_rows", "Copied")],
        empty="The desk was empty: only the schema was created.",
    )
    out = console()
    out.print(
        f"Copied {report.rows} rows into {inert(report.target)}; "
        f"{report.search_documents} search documents indexed."
    )
    if report.nul_characters_replaced:
        out.print(
            f"{report.nul_characters_replaced} NUL characters (which PostgreSQL cannot store) "
            "were replaced with U+FFFD."
        )
    out.print(
        "To use it, add this under [desk] in config.toml (or pass --db):\n"
        f'  database_url = "{inert(report.target)}"'
    )


def backup_cmd(
    ctx: typer.Context,
    path: Path = typer.Argument(..., metavar="PATH", help="A file, or a folder for a dated file."),
    force: bool = typer.Option(False, "--force", help="Replace an existing file."),
    json_out: JsonOut = False,
) -> None:
    """Back up the database while the desk is in use.

    SQLite: a consistent copy through SQLite's online backup API, checked after writing.
    PostgreSQL: prints the pg_dump command to run. Files under raw/ and attachments/ in the
    home are not in the database: copy them too (rsync, tar).

    Example: supportdesk backup /var/backups/supportdesk/
    """
    from supportdesk.team.move import backup_sqlite, pg_dump_command

    desk = desk_of(ctx)
    if desk.db.dialect == "postgresql":
        cmd = pg_dump_command(desk, path)
        if json_out:
            print_json({"backend": "postgresql", "command": cmd})
            return
        console().print(
            "This desk uses PostgreSQL; back it up with pg_dump (the password comes from "
            "~/.pgpass or PGPASSWORD):\n  " + inert(shlex.join(cmd))
        )
        return
    result = backup_sqlite(desk, path, force=force)
    if json_out:
        print_json({"backend": "sqlite", **result.as_dict()})
        return
    console().print(
        f"Backed up the database to {inert(result.path)} ({result.size} bytes). "
        f"Copy {inert(desk.home / 'raw')} and {inert(desk.home / 'attachments')} too."
    )


team_app = typer.Typer(
    help="Team desks on PostgreSQL: the database authenticates each person and enforces roles.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@team_app.command("init")
def team_init_cmd(
    ctx: typer.Context,
    db: str | None = typer.Option(
        None, "--db", help="The desk's PostgreSQL URL, e.g. postgresql:///supportdesk"
    ),
    runner: list[str] = typer.Option(
        None, "--runner", help="The runner's login (its OS user on one host); repeatable."
    ),
    lead: list[str] = typer.Option(None, "--lead", help="A first lead's login; repeatable."),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Create the roles supportdesk_agent, supportdesk_lead and supportdesk_runner and let the
    database enforce them. Run it as the database's owner; run it again after an upgrade.

    Example: sudo -u postgres supportdesk team init --db postgresql:///supportdesk --runner supportdesk --lead alice
    """
    from supportdesk.cli.context import state
    from supportdesk.team.teamdesk import init_team

    url = db or state(ctx).db_url
    if not url:
        from supportdesk.desk.desk import BadInput

        raise BadInput("team init needs the database: --db postgresql:///NAME")
    rep = init_team(url, runners=list(runner or []), leads=list(lead or []))
    if json_out:
        print_json(rep)
        return
    con = console()
    con.print(f"Team desk ready; roles {', '.join(rep['roles'])} (owner {rep['owner']}).")
    for name in rep["runners"]:
        con.print(f"Runner login: {name}")
    for name in rep["leads"]:
        con.print(f"Lead: {name}")
    con.print("Add agents as a lead: supportdesk --db URL agents add NAME --role agent")


def register(app: typer.Typer) -> None:
    app.add_typer(team_app, name="team")
    app.command("migrate-to")(migrate_to_cmd)
    app.command("backup")(backup_cmd)
