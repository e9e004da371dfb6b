"""Canned replies stored in the database; a folder of Markdown files for git.

On disk a template is ``<name>.md``: YAML front matter (``name``, ``subject``, ``tags``,
``language``) and the body. Import is all-or-nothing: every file is read and checked before
anything is stored, and an error names the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import frontmatter
from sqlmodel import Session, col, select

from supportdesk.core.text import iso
from supportdesk.desk import audit as events
from supportdesk.desk.desk import BadInput, Conflict, Desk, NotFound
from supportdesk.desk.permissions import require_lead
from supportdesk.replies.templating import check_syntax, render_text
from supportdesk.store.models import Template, Ticket, utcnow

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
PLACEHOLDER = re.compile(r"{{\s*(.+?)\s*}}")
FRONT_KEYS = ("name", "subject", "tags", "language")


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise BadInput(
            f"{name!r} is not a template name (lower-case letters, digits, '-', '_' or '.')"
        )
    return name


def _tags(value: Any) -> str:
    if value is None:
        return ""
    items = value if isinstance(value, list) else str(value).split(",")
    return ",".join(dict.fromkeys(str(t).strip().casefold() for t in items if str(t).strip()))


def get_template(session: Session, name: str) -> Template:
    tpl = session.exec(select(Template).where(Template.name == name)).first()
    if tpl is None:
        names = list(session.exec(select(Template.name)).all())
        hint = ""
        if names:
            from rapidfuzz import process

            best = process.extractOne(name, names, score_cutoff=60)
            hint = f" (did you mean {best[0]}?)" if best else ""
        raise NotFound(f"there is no template named {name!r}{hint}")
    return tpl


def list_templates(session: Session) -> list[Template]:
    return list(session.exec(select(Template).order_by(col(Template.name))).all())


def template_row(t: Template, *, body: bool = False) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": t.name, "subject": t.subject, "tags": [x for x in t.tags.split(",") if x],
        "language": t.language, "usage_count": t.usage_count, "created_at": iso(t.created_at),
        "updated_at": iso(t.updated_at),
    }  # fmt: skip
    if body:
        row["body"] = t.body
    return row


def _add_template(
    session: Session,
    desk: Desk,
    name: str,
    body: str,
    *,
    subject: str = "",
    tags: Any = None,
    language: str = "",
) -> Template:
    check_name(name)
    if not body.strip():
        raise BadInput("the template body is empty")
    check_syntax(body)
    check_syntax(subject)
    if session.exec(select(Template).where(Template.name == name)).first() is not None:
        raise Conflict(f"the template {name!r} already exists; use templates edit")
    tpl = Template(name=name, body=body, subject=subject, tags=_tags(tags), language=language)
    session.add(tpl)
    session.flush()
    events.record(session, "template_added", agent=desk.agent, name=name)
    return tpl


def add_template(
    desk: Desk, name: str, body: str, *, subject: str = "", tags: Any = None, language: str = ""
) -> Template:
    with desk.db.write() as session:
        return _add_template(
            session, desk, name, body, subject=subject, tags=tags, language=language
        )


def _edit_template(
    session: Session,
    desk: Desk,
    name: str,
    *,
    body: str | None = None,
    subject: str | None = None,
    tags: Any = None,
    language: str | None = None,
) -> Template:
    tpl = get_template(session, name)
    before = template_row(tpl, body=True)
    if body is not None:
        if not body.strip():
            raise BadInput("the template body is empty")
        check_syntax(body)
        tpl.body = body
    if subject is not None:
        check_syntax(subject)
        tpl.subject = subject
    if tags is not None:
        tpl.tags = _tags(tags)
    if language is not None:
        tpl.language = language
    after = template_row(tpl, body=True)
    if after != before:
        tpl.updated_at = utcnow()
        session.add(tpl)
        events.record(
            session,
            "template_changed",
            agent=desk.agent,
            name=name,
            before={k: v for k, v in before.items() if after[k] != v},
            after={k: v for k, v in after.items() if before[k] != v},
        )
    return tpl


def edit_template(
    desk: Desk,
    name: str,
    *,
    body: str | None = None,
    subject: str | None = None,
    tags: Any = None,
    language: str | None = None,
) -> Template:
    with desk.db.write() as session:
        return _edit_template(
            session, desk, name, body=body, subject=subject, tags=tags, language=language
        )


def remove_template(desk: Desk, name: str) -> None:
    """Delete a template. Lead only."""
    with desk.db.write() as session:
        require_lead(session, desk, "deleting a template")
        tpl = get_template(session, name)
        events.record(
            session,
            "template_removed",
            agent=desk.agent,
            name=name,
            body=tpl.body,
            subject=tpl.subject,
        )
        session.delete(tpl)


def render_template(
    session: Session, desk: Desk, name: str, ticket: Ticket | None, *, count_use: bool = False
) -> tuple[str, str]:
    """(subject, body) of a template for a ticket; strict placeholders. ``count_use`` counts a use."""
    tpl = get_template(session, name)
    body = render_text(session, desk, tpl.body, ticket)
    subject = render_text(session, desk, tpl.subject, ticket) if tpl.subject.strip() else ""
    if count_use:
        tpl.usage_count += 1
        session.add(tpl)
    return subject, body


def template_rows(desk: Desk, *, body: bool = False) -> list[dict[str, Any]]:
    """Every template as a row (the list command, the console's picker)."""
    with desk.db.read() as s:
        return [template_row(t, body=body) for t in list_templates(s)]


def show_template(desk: Desk, name: str) -> dict[str, Any]:
    with desk.db.read() as s:
        return template_row(get_template(s, name), body=True)


def render_for_ticket(desk: Desk, name: str, ticket_id: int) -> tuple[str, str]:
    """(subject, body) of a template for a ticket, every placeholder filled or an error."""
    from supportdesk.desk.records import get_ticket

    with desk.db.read() as s:
        return render_template(s, desk, name, get_ticket(s, ticket_id))


def unfilled(text: str) -> list[str]:
    """The placeholders still in a reply (``{{ customer.company }}``): it must not go out so."""
    return list(dict.fromkeys(m.group(1) for m in PLACEHOLDER.finditer(text)))


def fill_for_ticket(desk: Desk, name: str, ticket_id: int) -> tuple[str, list[str]]:
    """A template's text for a ticket with every placeholder that can be filled filled, and the
    names of those left for the agent (the console and ``tickets reply --editor`` both start here).
    """
    from supportdesk.desk.records import get_ticket

    with desk.db.read() as s:
        tpl = get_template(s, name)
        ticket = get_ticket(s, ticket_id)
        try:
            return render_text(s, desk, tpl.body, ticket, strict=True), []
        except BadInput:
            pass
        if "{%" in tpl.body:  # logic in the template: the agent fills the whole of it
            return tpl.body, unfilled(tpl.body)
        missing: list[str] = []

        def fill(m: re.Match[str]) -> str:
            try:
                return render_text(s, desk, m.group(0), ticket, strict=True)
            except BadInput:
                missing.append(m.group(1))
                return m.group(0)

        return PLACEHOLDER.sub(fill, tpl.body), list(dict.fromkeys(missing))


def render_reply(desk: Desk, text: str, ticket_id: int) -> str:
    """A reply with placeholders in it rendered for the ticket (strict: an unknown one is an error)."""
    from supportdesk.desk.records import get_ticket

    with desk.db.read() as s:
        return render_text(s, desk, text, get_ticket(s, ticket_id), strict=True)


def count_use(desk: Desk, name: str) -> None:
    """A reply written from a template (in the console or an editor) counts as a use of it."""
    with desk.db.write() as s:
        tpl = get_template(s, name)
        tpl.usage_count += 1
        s.add(tpl)


# ---------------------------------------------------------------- files


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{path.name} is not UTF-8 text") from None
    except OSError as exc:
        raise BadInput(f"{path.name} cannot be read: {exc.strerror}") from None
    try:
        post = frontmatter.loads(text)
    except Exception as exc:  # YAML errors come in several types
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadInput(f"{path.name} has front matter that does not parse: {first}") from None
    meta = dict(post.metadata)
    unknown = [k for k in meta if k not in FRONT_KEYS and k != "usage_count"]
    if unknown:
        raise BadInput(
            f"{path.name} has an unknown front matter key {unknown[0]!r} (known: {', '.join(FRONT_KEYS)})"
        )
    name = str(meta.get("name") or path.stem)
    try:
        check_name(name)
        if not post.content.strip():
            raise BadInput("the template body is empty")
        check_syntax(post.content)
        check_syntax(str(meta.get("subject") or ""))
    except BadInput as exc:
        raise BadInput(f"{path.name}: {exc}") from None
    body = post.content if post.content.endswith("\n") else post.content + "\n"
    return {
        "name": name,
        "body": body,
        "subject": str(meta.get("subject") or ""),
        "tags": _tags(meta.get("tags")),
        "language": str(meta.get("language") or ""),
        "file": path.name,
    }


def import_dir(desk: Desk, folder: Path) -> dict[str, list[str]]:
    """Add or update templates from ``folder/*.md``; returns names added, updated, unchanged."""
    with desk.db.write() as session:
        if not folder.is_dir():
            raise BadInput(f"{folder} is not a folder")
        files = sorted(folder.glob("*.md"))
        if not files:
            raise BadInput(f"{folder} has no .md files")
        docs = [_read_file(f) for f in files]
        seen: dict[str, str] = {}
        for d in docs:
            if d["name"] in seen:
                raise BadInput(
                    f"{d['file']} and {seen[d['name']]} both define the template {d['name']!r}"
                )
            seen[d["name"]] = d["file"]
        out: dict[str, list[str]] = {"added": [], "updated": [], "unchanged": []}
        for d in docs:
            tpl = session.exec(select(Template).where(Template.name == d["name"])).first()
            if tpl is None:
                _add_template(
                    session,
                    desk,
                    d["name"],
                    d["body"],
                    subject=d["subject"],
                    tags=d["tags"],
                    language=d["language"],
                )
                out["added"].append(d["name"])
                continue
            same = (tpl.body.rstrip(), tpl.subject, tpl.tags, tpl.language) == (
                d["body"].rstrip(),
                d["subject"],
                d["tags"],
                d["language"],
            )
            if same:
                out["unchanged"].append(d["name"])
            else:
                _edit_template(
                    session,
                    desk,
                    d["name"],
                    body=d["body"],
                    subject=d["subject"],
                    tags=d["tags"],
                    language=d["language"],
                )
                out["updated"].append(d["name"])
        return out


def to_markdown(t: Template) -> str:
    meta: dict[str, Any] = {"name": t.name}
    if t.subject:
        meta["subject"] = t.subject
    tags = [x for x in t.tags.split(",") if x]
    if tags:
        meta["tags"] = tags
    if t.language:
        meta["language"] = t.language
    post = frontmatter.Post(t.body.rstrip("\n"), **meta)
    return frontmatter.dumps(post, sort_keys=False) + "\n"


def export_dir(desk: Desk, folder: Path) -> list[Path]:
    """Write every template to ``folder/<name>.md`` (the folder is created)."""
    with desk.db.read() as session:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInput(f"{folder} cannot be created: {exc.strerror}") from None
        if not folder.is_dir():
            raise BadInput(f"{folder} is not a folder")
        written = []
        for t in list_templates(session):
            path = folder / f"{t.name}.md"
            path.write_text(to_markdown(t), encoding="utf-8")
            written.append(path)
        return written
