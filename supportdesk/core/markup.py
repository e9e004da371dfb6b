"""Markdown to safe HTML (the HTML part of a reply) and HTML made safe to open in a browser.

A reply is written in Markdown; its HTML alternative is rendered with raw HTML disabled (what an
agent pastes is shown as text, never as markup) and then sanitised with an allow-list, so a
template or a KB article cannot put a script, a style or a tracking image into a customer's mail.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

_TAGS = {
    "a", "b", "blockquote", "br", "code", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
    "li", "ol", "p", "pre", "s", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "title"}, "td": {"align"}, "th": {"align"}, "ol": {"start"}}
_SCHEMES = {"http", "https", "mailto", "tel"}


@lru_cache(maxsize=1)
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    # commonmark with raw HTML off; tables and strikethrough as a mail client shows them
    return MarkdownIt("commonmark", {"html": False, "breaks": True}).enable(
        ["table", "strikethrough"]
    )


def sanitize_html(html: str) -> str:
    """Only plain formatting, links (http, https, mailto, tel) and tables survive."""
    import nh3

    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )


def markdown_to_html(text: str) -> str:
    """A whole HTML document for a reply's Markdown text, sanitised."""
    body = sanitize_html(_markdown().render(text or ""))
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head>\n'
        f'<body style="font-family: sans-serif; font-size: 14px;">\n{body}</body></html>\n'
    )


def sanitized_page(html: str, title: str = "") -> str:
    """An inbound mail's HTML, sanitised (no scripts, styles, remote images or forms), as a
    page that is safe to open in a local browser."""
    import html as html_mod

    body = sanitize_html(html or "")
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'">'
        f"<title>{html_mod.escape(title)}</title></head>\n<body>\n{body}\n</body></html>\n"
    )


MAX_HTML = 2_000_000  # characters of an inbound mail's HTML worth laying out


def html_to_readable(html: str) -> str:
    """An inbound mail's HTML as readable text: paragraphs, lists with bullets, tables in
    columns, and every link as a numbered footnote (``text [1]`` ... ``[1] https://...``), so
    a link's real target is visible next to the words that show it."""
    import lxml.html
    from inscriptis import get_text
    from lxml import etree

    if not html or not html.strip():
        return ""
    try:
        root = lxml.html.document_fromstring(html[:MAX_HTML])
    except (etree.ParserError, ValueError):
        return get_text(html[:MAX_HTML]).strip()
    notes: list[str] = []
    for a in root.iter("a"):
        href = (a.get("href") or "").strip()
        if not href or href.startswith("#"):
            continue
        label = " ".join((a.text_content() or "").split())
        if href in notes:
            n = notes.index(href) + 1
        else:
            notes.append(href)
            n = len(notes)
        if label == href or label == href.removeprefix("mailto:"):
            continue  # the words already are the address
        marker = etree.SubElement(a, "span")
        marker.text = f" [{n}]"
    for img in root.iter("img"):  # remote images are never fetched: say what was there
        alt = (img.get("alt") or "").strip()
        if alt:
            img.tail = f"[{alt}]" + (img.tail or "")
    text = get_text(lxml.html.tostring(root, encoding="unicode"))
    lines = [line.rstrip() for line in text.splitlines()]
    out = "\n".join(lines).strip("\n")
    while "\n\n\n" in out:
        out = out.replace("\n\n\n", "\n\n")
    if notes:
        out += "\n\n" + "\n".join(f"[{i}] {href}" for i, href in enumerate(notes, 1))
    return out
