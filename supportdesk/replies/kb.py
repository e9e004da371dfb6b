"""The knowledge base: Markdown articles with tags and an internal/public flag.

Articles are indexed for search like tickets (stemmed, Russian and English). They travel as a
folder of Markdown files with front matter (``import_dir`` / ``export_dir``), and the public ones
become a small static help site (``export_html``). ``suggest_for_ticket`` offers articles and
templates for the composer.

Long because: articles, their Markdown folders, the static help site and the suggestions share
the article model and its slug rules.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from supportdesk.desk import audit as events
from supportdesk.desk.desk import BadInput, Conflict, Desk, NotFound
from supportdesk.search.highlight import highlight
from supportdesk.store import hits
from supportdesk.store import search as store
from supportdesk.store.db import session_run
from supportdesk.store.models import KbArticle, Message, Template, Ticket, utcnow
from supportdesk.store.stems import stem_text, stem_tokens, tokens

MAX_TITLE = 300
MAX_BODY = 1_000_000
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
_TRANSLIT = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        "a b v g d e e zh z i y k l m n o p r s t u f kh ts ch sh shch - y - e yu ya".split(" "),
        strict=True,
    )
)


def slugify(title: str) -> str:
    """An ASCII slug for file names and URLs: "Как сбросить пароль" -> "kak-sbrosit-parol"."""
    out = []
    for ch in title.lower():
        if ch in _TRANSLIT:
            t = _TRANSLIT[ch]
            out.append("" if t == "-" else t)
        elif ch.isascii() and ch.isalnum():
            out.append(ch)
        else:
            out.append("-")
    slug = re.sub(r"-+", "-", "".join(out)).strip("-")[:80].strip("-")
    return slug or "article"


def _tags(tags: str | list[str] | tuple[str, ...] | None) -> str:
    if tags is None:
        return ""
    items = tags.split(",") if isinstance(tags, str) else [str(t) for t in tags]
    clean: list[str] = []
    for t in items:
        t = t.strip().lower()
        if t and t not in clean:
            clean.append(t)
    return ",".join(clean)


def _check(title: str, body: str, slug: str) -> None:
    if not title.strip():
        raise BadInput("an article needs a title")
    if len(title) > MAX_TITLE:
        raise BadInput(f"the title is longer than {MAX_TITLE} characters")
    if len(body) > MAX_BODY:
        raise BadInput("the article is longer than a million characters")
    if "\x00" in title or "\x00" in body:
        raise BadInput("the article contains a NUL character")
    if not _SLUG.match(slug):
        raise BadInput(
            f"the slug {slug!r} may hold only a-z, 0-9 and dashes, and start with a letter or digit"
        )


def article_dict(a: KbArticle, *, body: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": a.id,
        "slug": a.slug,
        "title": a.title,
        "tags": [t for t in a.tags.split(",") if t],
        "public": a.public,
        "language": a.language,
        "created_at": a.created_at.isoformat(),
        "updated_at": a.updated_at.isoformat(),
    }
    if body:
        doc["body"] = a.body
    return doc


def list_articles(
    session: Session, *, tag: str | None = None, public: bool | None = None
) -> list[KbArticle]:
    stmt = select(KbArticle).order_by(col(KbArticle.title), col(KbArticle.id))
    if public is not None:
        stmt = stmt.where(KbArticle.public == public)
    rows = list(session.exec(stmt).all())
    if tag:
        t = tag.strip().lower()
        rows = [a for a in rows if t in a.tags.split(",")]
    return rows


def get_article(session: Session, ref: str | int) -> KbArticle:
    """An article by id or slug."""
    text = str(ref).strip()
    a = None
    if text.isdigit():
        a = session.get(KbArticle, int(text))
    if a is None:
        a = session.exec(select(KbArticle).where(KbArticle.slug == text.lower())).first()
    if a is None:
        raise NotFound(f"there is no knowledge-base article {text!r}")
    return a


def _index(session: Session, a: KbArticle) -> None:
    session.flush()
    store.upsert(session.connection(), [store.kb_doc(a.id or 0, a.title, a.body, a.tags, a.slug)])


def _unique_slug(session: Session, slug: str, exclude: int | None = None) -> None:
    other = session.exec(select(KbArticle).where(KbArticle.slug == slug)).first()
    if other is not None and other.id != exclude:
        raise Conflict(f"an article with the slug {slug!r} exists already (#{other.id})")


def _add_article(
    session: Session,
    desk: Desk,
    title: str,
    body: str,
    *,
    tags: str | list[str] | None = None,
    public: bool = False,
    language: str = "",
    slug: str | None = None,
) -> KbArticle:
    title = title.strip()
    slug = (slug or slugify(title)).strip().lower()
    _check(title, body, slug)
    _unique_slug(session, slug)
    now = utcnow()
    a = KbArticle(slug=slug, title=title, body=body, tags=_tags(tags), public=public,
                  language=language.strip().lower(), created_at=now, updated_at=now)  # fmt: skip
    session.add(a)
    _index(session, a)
    events.record(session, "kb_added", agent=desk.agent, after=article_dict(a, body=False))
    return a


def _edit_article(
    session: Session,
    desk: Desk,
    ref: str | int,
    *,
    title: str | None = None,
    body: str | None = None,
    tags: str | list[str] | None = None,
    public: bool | None = None,
    language: str | None = None,
    slug: str | None = None,
) -> KbArticle:
    a = get_article(session, ref)
    before = article_dict(a)
    new_title = a.title if title is None else title.strip()
    new_body = a.body if body is None else body
    new_slug = a.slug if slug is None else slug.strip().lower()
    _check(new_title, new_body, new_slug)
    if new_slug != a.slug:
        _unique_slug(session, new_slug, exclude=a.id)
    a.title, a.body, a.slug = new_title, new_body, new_slug
    if tags is not None:
        a.tags = _tags(tags)
    if public is not None:
        a.public = public
    if language is not None:
        a.language = language.strip().lower()
    after = article_dict(a)
    if after == before:
        return a
    a.updated_at = utcnow()
    session.add(a)
    _index(session, a)
    changed = {k: after[k] for k in after if after[k] != before[k] and k != "body"}
    events.record(session, "kb_edited", agent=desk.agent, article=a.id,
                  before={k: before[k] for k in changed}, after=changed,
                  body_changed=before["body"] != after["body"])  # fmt: skip
    return a


def remove_article(desk: Desk, ref: str | int) -> dict[str, Any]:
    with desk.db.write() as session:
        a = get_article(session, ref)
        doc = article_dict(a)
        session.delete(a)
        session.flush()  # the delete trigger drops its search document
        events.record(session, "kb_removed", agent=desk.agent, before=doc)
        return doc


# --------------------------------------------------------------------------- Markdown folders


def import_dir(desk: Desk, path: Path) -> dict[str, int]:
    """Add or update articles from ``*.md`` files with front matter (title, slug, tags,
    public, language); the file name is the slug when the front matter has none."""
    with desk.db.write() as session:
        import frontmatter

        if not path.is_dir():
            raise NotFound(f"{path} is not a folder")
        counts = {"added": 0, "updated": 0, "unchanged": 0}
        for f in sorted(path.glob("*.md")):
            try:
                post = frontmatter.loads(f.read_text(encoding="utf-8"))
            except UnicodeDecodeError:
                raise BadInput(f"{f.name} is not UTF-8 text") from None
            except Exception as exc:  # YAML errors come in many types
                raise BadInput(f"{f.name} has unreadable front matter: {exc}") from None
            meta = post.metadata
            title = str(meta.get("title") or "").strip() or _first_heading(post.content) or f.stem
            slug = str(meta.get("slug") or f.stem).strip().lower()
            tags = meta.get("tags")
            tag_text = _tags(tags if isinstance(tags, list | str) else None)
            public = bool(meta.get("public", False))
            language = str(meta.get("language") or "")
            try:
                existing = get_article(session, slug) if _SLUG.match(slug) else None
            except NotFound:
                existing = None
            try:
                if existing is None:
                    _add_article(session, desk, title, post.content, tags=tag_text, public=public,
                                language=language, slug=slug)  # fmt: skip
                    counts["added"] += 1
                else:
                    stamp = existing.updated_at
                    _edit_article(session, desk, existing.id or 0, title=title, body=post.content,
                                 tags=tag_text, public=public, language=language)  # fmt: skip
                    counts["updated" if existing.updated_at != stamp else "unchanged"] += 1
            except BadInput as exc:
                raise BadInput(f"{f.name}: {exc}") from None
        return counts


def _first_heading(text: str) -> str:
    m = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
    return m.group(1).strip() if m else ""


def export_dir(desk: Desk, path: Path, *, public_only: bool = False) -> int:
    """Write every article as ``<slug>.md`` with front matter; returns how many."""
    with desk.db.read() as session:
        import frontmatter

        path.mkdir(parents=True, exist_ok=True)
        n = 0
        for a in list_articles(session, public=True if public_only else None):
            post = frontmatter.Post(
                a.body, title=a.title, slug=a.slug, tags=[t for t in a.tags.split(",") if t],
                public=a.public, language=a.language,
            )  # fmt: skip
            (path / f"{a.slug}.md").write_text(frontmatter.dumps(post) + "\n", encoding="utf-8")
            n += 1
        return n


# --------------------------------------------------------------------------- HTML help site


def render_markdown(text: str) -> str:
    """Markdown to HTML with raw HTML escaped (never passed through) and unsafe links dropped."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable("table")
    md.enable("strikethrough")
    return str(md.render(text))


_PAGE = """<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.5; color: #222; }}
a {{ color: #0645ad; }} h1 {{ font-size: 1.6rem; }} h2 {{ margin-top: 2rem; }}
pre {{ background: #f5f5f5; padding: .75rem; overflow-x: auto; }}
code {{ background: #f5f5f5; padding: 0 .2rem; }}
.tags {{ color: #666; font-size: .9rem; }} footer {{ margin-top: 3rem; color: #888; font-size: .8rem; }}
</style>
</head>
<body>
{body}
<footer>{footer}</footer>
</body>
</html>
"""


def public_link(desk: Desk, article_id: int) -> str | None:
    """The article's page on the published help site (``[desk] kb_url``), if it is public."""
    base = desk.config.desk.kb_url
    if not base:
        return None
    with desk.db.read() as session:
        a = session.get(KbArticle, article_id)
        if a is None or not a.public:
            return None
        return f"{base.rstrip('/')}/{a.slug}.html"


def export_html(desk: Desk, path: Path) -> int:
    """Write the public articles as a static help site: ``index.html`` (articles by tag) and
    one ``<slug>.html`` per article. Returns the number of articles written."""
    with desk.db.read() as session:
        e = html.escape
        path.mkdir(parents=True, exist_ok=True)
        site = desk.config.desk.name or "Help"
        articles = list_articles(session, public=True)
        stamp = f"{e(site)} · updated {utcnow().date().isoformat()}"
        by_tag: dict[str, list[KbArticle]] = {}
        for a in articles:
            for t in [t for t in a.tags.split(",") if t] or [""]:
                by_tag.setdefault(t, []).append(a)
            tags = ", ".join(e(t) for t in a.tags.split(",") if t)
            body = (
                f'<p><a href="index.html">← {e(site)}</a></p>\n<h1>{e(a.title)}</h1>\n'
                + (f'<p class="tags">{tags}</p>\n' if tags else "")
                + render_markdown(a.body)
            )
            page = _PAGE.format(lang=e(a.language or "en"), title=f"{e(a.title)} · {e(site)}",
                                body=body, footer=stamp)  # fmt: skip
            (path / f"{a.slug}.html").write_text(page, encoding="utf-8")
        sections = []
        for tag in sorted(by_tag, key=lambda t: (t == "", t)):
            items = "\n".join(
                f'<li><a href="{e(a.slug)}.html">{e(a.title)}</a></li>'
                for a in sorted(by_tag[tag], key=lambda a: a.title.lower())
            )
            sections.append(f"<h2>{e(tag) if tag else 'General'}</h2>\n<ul>\n{items}\n</ul>")
        body = f"<h1>{e(site)}</h1>\n" + ("\n".join(sections) or "<p>No articles yet.</p>")
        index = _PAGE.format(lang="en", title=e(site), body=body, footer=stamp)
        (path / "index.html").write_text(index, encoding="utf-8")
        return len(articles)


# --------------------------------------------------------------------------- composer suggestions


def _query_stems(text: str, cap: int = 24) -> list[str]:
    seen: list[str] = []
    for s in stem_tokens(tokens(text[:5000])):
        if len(s) >= 3 and not s.isdigit() and s not in seen:
            seen.append(s)
        if len(seen) >= cap:
            break
    return seen


def suggest_for_ticket(
    session: Session, desk: Desk, ticket_id: int, limit: int = 5
) -> list[dict[str, Any]]:
    """KB articles and templates that match the ticket's subject and last customer message,
    best first: ``[{"kind": "kb"|"template", "id", "title", "slug"|"name", "snippet",
    "highlights", "score"}]`` (score: the share of the ticket's words the item contains)."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"ticket #{ticket_id} does not exist")
    last = session.exec(
        select(Message)
        .where(Message.ticket_id == ticket_id, Message.direction == "in")
        .order_by(col(Message.created_at).desc(), col(Message.id).desc())
    ).first()
    text = f"{ticket.subject}\n{last.text if last else ''}"
    stems = _query_stems(text)
    if not stems:
        return []
    wanted = set(stems)
    terms = [store.Term([s]) for s in stems]
    out: list[tuple[float, float, dict[str, Any]]] = []
    rank = hits.ranked_kb(session_run(session), session.get_bind().dialect.name, terms, limit * 4)
    if rank:
        for a in session.exec(select(KbArticle).where(col(KbArticle.id).in_(list(rank)))).all():
            have = set(stem_text(f"{a.title} {a.body} {a.tags}").split())
            cover = len(wanted & have) / len(wanted)
            snippet, hl, _n = highlight(a.body, wanted & have, set())
            out.append((cover, rank[a.id or 0], {
                "kind": "kb", "id": a.id, "slug": a.slug, "title": a.title, "public": a.public,
                "snippet": snippet, "highlights": [list(x) for x in hl],
            }))  # fmt: skip
    for t in session.exec(select(Template)).all():
        have = set(stem_text(f"{t.name} {t.subject} {t.body} {t.tags}").split())
        common = wanted & have
        if not common:
            continue
        cover = len(common) / len(wanted)
        snippet, hl, _n = highlight(t.body, common, set())
        out.append((cover, 0.0, {
            "kind": "template", "id": t.id, "name": t.name, "title": t.subject or t.name,
            "snippet": snippet, "highlights": [list(x) for x in hl],
        }))  # fmt: skip
    out.sort(key=lambda x: (-x[0], x[1]))
    result = []
    for cover, _r, doc in out[:limit]:
        doc["score"] = round(cover, 4)
        result.append(doc)
    return result


def add_article(
    desk: Desk,
    title: str,
    body: str,
    *,
    tags: str | list[str] | None = None,
    public: bool = False,
    language: str = "",
    slug: str | None = None,
) -> KbArticle:
    """Add an article; audited."""
    with desk.db.write() as session:
        return _add_article(
            session, desk, title, body, tags=tags, public=public, language=language, slug=slug
        )


def edit_article(
    desk: Desk,
    ref: str | int,
    *,
    title: str | None = None,
    body: str | None = None,
    tags: str | list[str] | None = None,
    public: bool | None = None,
    language: str | None = None,
    slug: str | None = None,
) -> KbArticle:
    """Change an article; audited."""
    with desk.db.write() as session:
        return _edit_article(session, desk, ref, title=title, body=body, tags=tags,
                             public=public, language=language, slug=slug)  # fmt: skip


def show_article(desk: Desk, ref: str | int) -> dict[str, Any]:
    with desk.db.read() as session:
        return article_dict(get_article(session, ref))


def article_rows(
    desk: Desk, *, tag: str | None = None, public: bool | None = None
) -> list[dict[str, Any]]:
    with desk.db.read() as session:
        return [article_dict(a, body=False) for a in list_articles(session, tag=tag, public=public)]


def suggest_public(session: Session, text: str, limit: int = 3) -> list[dict[str, Any]]:
    """Public articles matching free text (what a website visitor is typing), best first:
    ``[{"id", "slug", "title", "snippet"}]``. Internal articles never appear."""
    stems = _query_stems(text, cap=16)
    if not stems:
        return []
    wanted = set(stems)
    terms = [store.Term([s]) for s in stems]
    rank = hits.ranked_kb(session_run(session), session.get_bind().dialect.name, terms, limit * 8)
    if not rank:
        return []
    found: list[tuple[float, float, dict[str, Any]]] = []
    q = select(KbArticle).where(col(KbArticle.id).in_(list(rank)), col(KbArticle.public))
    for a in session.exec(q).all():
        have = set(store.stem_text(f"{a.title} {a.body} {a.tags}").split())
        common = wanted & have
        if not common:
            continue
        snippet, _hl, _n = highlight(a.body, common, set())
        doc = {"id": a.id, "slug": a.slug, "title": a.title, "snippet": snippet}
        found.append((len(common) / len(wanted), rank[a.id or 0], doc))
    found.sort(key=lambda x: (-x[0], x[1]))
    return [doc for _c, _r, doc in found[:limit]]
