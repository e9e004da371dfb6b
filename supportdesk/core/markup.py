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
