"""`supportdesk kb ...`: the knowledge base."""

from __future__ import annotations

from pathlib import Path

import typer

from supportdesk.cli.context import desk_of
from supportdesk.cli.options import CsvOut, JsonOut, stdin_or
from supportdesk.cli.output import console, inert, print_csv, print_json, print_table

app = typer.Typer(
    help="Knowledge-base articles (Markdown).", no_args_is_help=True, rich_markup_mode=None
)

LIST_COLUMNS = [("id", "#"), ("slug", "Slug"), ("title", "Title"), ("tags", "Tags"),
                ("visibility", "Visibility"), ("language", "Lang"), ("updated_at", "Updated")]  # fmt: skip
CSV_COLUMNS = ["id", "slug", "title", "tags", "public", "language", "created_at", "updated_at"]


def _body(file: Path | None, text: str | None, *, required: bool) -> str | None:
    from supportdesk.desk.desk import BadInput

    if file is not None and text is not None:
        raise BadInput("give the body with --file or --text, not both")
    text = stdin_or(text)
    if file is not None:
        if str(file) == "-":
            import sys

            return sys.stdin.read()
        try:
            return file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise BadInput(f"{file} is not UTF-8 text") from None
    if text is not None:
        return text
    if required:
        raise BadInput("give the article's body with --file F (or - for stdin) or --text T")
    return None


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    tag: str | None = typer.Option(None, "--tag", help="Only articles with this tag."),
    public: bool | None = typer.Option(
        None, "--public/--internal", help="Only public or only internal."
    ),
    json_out: JsonOut = False,
    csv_out: CsvOut = False,
) -> None:
    """List the articles, by title.

    Example: supportdesk kb list --public --json
    """
    from supportdesk.replies.kb import article_rows

    desk = desk_of(ctx)
    rows = article_rows(desk, tag=tag, public=public)
    if json_out:
        print_json(rows)
    elif csv_out:
        print_csv(rows, CSV_COLUMNS)
    else:
        for r in rows:
            r["visibility"] = "public" if r["public"] else "internal"
            r["updated_at"] = r["updated_at"][:10]
        print_table(rows, LIST_COLUMNS, empty="No articles yet (kb add TITLE --file F).",
                    max_width={"title": 60})  # fmt: skip


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="Article id or slug."),
    json_out: JsonOut = False,
    raw: bool = typer.Option(False, "--raw", help="Print the Markdown source."),
) -> None:
    """Show one article, its Markdown rendered for the terminal.

    Example: supportdesk kb show reset-password
    """
    from supportdesk.replies.kb import show_article

    desk = desk_of(ctx)
    doc = show_article(desk, ref)
    if json_out:
        print_json(doc)
        return
    from rich.markdown import Markdown
    from rich.text import Text

    con = console()
    con.print(Text(inert(doc["title"], one_line=True), style="bold"))
    vis = "public" if doc["public"] else "internal"
    tags = ", ".join(doc["tags"])
    con.print(
        Text(
            inert(f"{doc['slug']} · {vis}" + (f" · {tags}" if tags else ""), one_line=True),
            style="dim",
        )
    )
    con.print()
    if raw:
        con.print(Text(inert(doc["body"])))
    else:
        con.print(Markdown(inert(doc["body"])))


@app.command("add")
def add_cmd(
    ctx: typer.Context,
    title: str = typer.Argument(..., help="The article's title."),
    file: Path | None = typer.Option(
        None, "--file", "-f", help="Markdown file with the body (- = stdin)."
    ),
    text: str | None = typer.Option(None, "--text", "-t", help="The body as text."),
    tags: str = typer.Option("", "--tags", help="Comma-separated tags."),
    public: bool = typer.Option(
        False, "--public/--internal", help="Public articles go to the help site."
    ),
    language: str = typer.Option("", "--language", help="ru, en ..."),
    slug: str | None = typer.Option(
        None, "--slug", help="URL/file name (default: from the title)."
    ),
    json_out: JsonOut = False,
) -> None:
    """Add an article.

    Example: supportdesk kb add "Как сбросить пароль" --file reset.md --tags login --public
    """
    from supportdesk.replies.kb import add_article, article_dict

    body = _body(file, text, required=True) or ""
    desk = desk_of(ctx)
    doc = article_dict(add_article(desk, title, body, tags=tags, public=public,
                                   language=language, slug=slug))  # fmt: skip
    if json_out:
        print_json(doc)
    else:
        console().print(f"Added article {doc['id']} ({inert(doc['slug'])}).")


@app.command("edit")
def edit_cmd(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="Article id or slug."),
    title: str | None = typer.Option(None, "--title", help="New title."),
    file: Path | None = typer.Option(
        None, "--file", "-f", help="New body from a Markdown file (- = stdin)."
    ),
    text: str | None = typer.Option(None, "--text", "-t", help="New body as text."),
    tags: str | None = typer.Option(None, "--tags", help="Replace the tags (comma-separated)."),
    public: bool | None = typer.Option(None, "--public/--internal", help="Change the visibility."),
    language: str | None = typer.Option(None, "--language", help="ru, en ..."),
    slug: str | None = typer.Option(None, "--slug", help="New slug."),
    json_out: JsonOut = False,
) -> None:
    """Change an article; options not given stay as they are.

    Example: supportdesk kb edit reset-password --file reset.md --public
    """
    from supportdesk.replies.kb import article_dict, edit_article

    body = _body(file, text, required=False)
    desk = desk_of(ctx)
    doc = article_dict(edit_article(desk, ref, title=title, body=body, tags=tags,
                                    public=public, language=language, slug=slug))  # fmt: skip
    if json_out:
        print_json(doc)
    else:
        console().print(f"Article {doc['id']} ({inert(doc['slug'])}) saved.")


@app.command("rm")
def rm_cmd(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="Article id or slug."),
) -> None:
    """Delete an article (the audit log keeps its metadata).

    Example: supportdesk kb rm old-pricing
    """
    from supportdesk.replies.kb import remove_article

    desk = desk_of(ctx)
    doc = remove_article(desk, ref)
    console().print(f"Removed article {doc['id']} ({inert(doc['slug'])}).")


@app.command("search")
def search_cmd(
    ctx: typer.Context,
    query: list[str] = typer.Argument(..., help='Words, "a phrase", prefix*.'),
    json_out: JsonOut = False,
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=500, help="At most this many."),
) -> None:
    """Search the articles (Russian and English word forms match).

    Example: supportdesk kb search пароль --json
    """
    from supportdesk.cli.render import styled
    from supportdesk.search.search import search_desk

    desk = desk_of(ctx)
    hits = search_desk(desk, " ".join(query), kinds=["kb"], limit=limit)
    if json_out:
        print_json(hits)
        return
    from rich.text import Text

    con = console()
    if not hits:
        con.print(Text("Nothing found."))
    for h in hits:
        line = Text(f"{h['slug']}  ")
        line.append_text(styled(h["title"], h["title_highlights"]))
        con.print(line)
        if h["snippet"]:
            con.print(Text("    ").append_text(styled(h["snippet"], h["highlights"])))


@app.command("import")
def import_cmd(
    ctx: typer.Context,
    folder: Path = typer.Argument(..., help="A folder of *.md files with front matter."),
) -> None:
    """Add or update articles from Markdown files (front matter: title, slug, tags, public,
    language; the file name is the slug when none is given).

    Example: supportdesk kb import ./kb
    """
    from supportdesk.replies.kb import import_dir

    desk = desk_of(ctx)
    counts = import_dir(desk, folder)
    console().print(
        f"{counts['added']} added, {counts['updated']} updated, {counts['unchanged']} unchanged."
    )


@app.command("export")
def export_cmd(
    ctx: typer.Context,
    folder: Path = typer.Argument(..., help="Where to write (created if missing)."),
    html: bool = typer.Option(False, "--html", help="A static help site of the public articles."),
    public_only: bool = typer.Option(
        False, "--public-only", help="Markdown export: public articles only."
    ),
) -> None:
    """Write the articles as Markdown files with front matter, or (--html) the public ones
    as a small static help site (index.html plus one page per article).

    Example: supportdesk kb export --html ./help-site
    """
    from supportdesk.replies.kb import export_dir, export_html

    desk = desk_of(ctx)
    n = export_html(desk, folder) if html else export_dir(desk, folder, public_only=public_only)
    what = "public articles as HTML" if html else "articles as Markdown"
    console().print(f"Wrote {n} {what} to {folder}.")


def register(main_app: typer.Typer) -> None:
    main_app.add_typer(app, name="kb")
