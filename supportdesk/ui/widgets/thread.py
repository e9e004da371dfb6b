"""Rendering a ticket for the console: messages, the customer card, the SLA clocks, previews.

Everything that came from a customer goes through ``inert`` into ``rich.text.Text``: markup in
a subject stays literal and escape sequences become visible placeholders.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from rich.text import Text
from textual.widgets import Static

from supportdesk.core.i18n import _, ngettext
from supportdesk.core.text import inert
from supportdesk.ui.widgets.format import (
    OVERDUE,
    PRIORITY_STYLE,
    STATUS_STYLE,
    due,
    kind_mark,
    priority_label,
    span,
    status_label,
    when,
)


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def size_text(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n / 1024 / 1024:.1f} MB"


DELIVERY_STYLE = {"queued": "yellow", "sending": "yellow", "sent": "green", "failed": "bold red",
                  "cancelled": "dim", "in_doubt": "bold magenta", "dropped": "dim"}  # fmt: skip


def delivery_label(state: str) -> str:
    return {"queued": _("queued"), "sending": _("sending"), "sent": _("sent"),
            "failed": _("failed"), "cancelled": _("cancelled"),
            "in_doubt": _("in doubt: may have arrived"), "dropped": _("dropped")}.get(state, state)  # fmt: skip


def message_header(m: dict[str, Any], now: datetime) -> Text:
    direction = m.get("direction", "in")
    arrow = {"in": "←", "out": "→", "note": "✎"}.get(direction, "·")
    head = Text(no_wrap=True, overflow="ellipsis")
    head.append(f"{arrow} ", style="bold")
    who = m.get("author") or m.get("author_address") or ""
    head.append(inert(who, one_line=True), style="bold")
    addr = m.get("author_address") or ""
    if addr and addr != who and direction == "in":
        head.append(f" <{inert(addr, one_line=True)}>", style="dim")
    head.append("  ")
    if direction == "note":
        head.append(_("internal note"), style="bold yellow")
    else:
        kind = m.get("kind", "")
        head.append(f"{kind_mark(kind)} {inert(m.get('channel', ''), one_line=True)}")
    head.append("  " + when(_dt(m.get("created_at")), now), style="dim")
    d = m.get("delivery")
    if d:
        head.append("  ")
        head.append(delivery_label(d["status"]), style=DELIVERY_STYLE.get(d["status"], ""))
        if d.get("error"):
            head.append(": " + inert(d["error"], one_line=True), style="red")
    if m.get("edited"):
        head.append("  " + _("(edited)"), style="dim italic")
    if m.get("auto"):
        head.append("  " + _("(automatic)"), style="dim italic")
    return head


_REASONS = [
    (re.compile(r"^new ticket \(#(\d+) is closed\)"), "new ticket (#{n} is closed)"),
    (re.compile(r"^new ticket"), "new ticket"),
    (re.compile(r"^\[#(\d+)\] token in the subject"), "[#{n}] token in the subject"),
    (re.compile(r"^open Telegram chat"), "open Telegram chat"),
    (re.compile(r"^bounce of (<[^>]*>)"), "bounce of {n}"),
]


def reason_label(reason: str) -> str:
    """Why a message joined its ticket, in the console's language (headers stay as they are)."""
    reopened = reason.endswith(" (reopened)")
    core = reason.removesuffix(" (reopened)")
    out = core
    for pattern, msgid in _REASONS:
        m = pattern.match(core)
        if m:
            out = _(msgid).format(n=m.group(1) if m.groups() else "") + core[m.end() :]
            break
    return out + (" " + _("(reopened)") if reopened else "")


def message_body(m: dict[str, Any], now: datetime, *, show_quotes: bool) -> Text:
    text = Text()
    text.append_text(message_header(m, now))
    text.append("\n")
    if m.get("thread_reason"):
        text.append(
            "  " + _("joined: ") + inert(reason_label(m["thread_reason"]), one_line=True) + "\n",
            style="dim",
        )
    body = inert(m.get("html_text") or m.get("text") or "").rstrip()
    if m.get("html_text"):
        text.append("  " + _("shown from its HTML (H: the text part)") + "\n", style="dim")
    text.append(body or _("(no text)"), style="" if body else "dim italic")
    quoted = (m.get("quoted_text") or "").rstrip()
    if quoted:
        lines = quoted.count("\n") + 1
        if show_quotes:
            text.append("\n")
            for line in inert(quoted).splitlines():
                text.append("│ " + line + "\n", style="dim")
            text.rstrip()
        else:
            text.append("\n")
            text.append(
                "▸ "
                + ngettext("{n} quoted line folded", "{n} quoted lines folded", lines).format(
                    n=lines
                ),
                style="dim italic",
            )
    for a in m.get("attachments") or []:
        text.append("\n📎 ")
        text.append(inert(a.get("filename", ""), one_line=True), style="underline")
        text.append(f" ({size_text(int(a.get('size') or 0))}, {inert(a.get('content_type', ''), one_line=True)})",
                    style="dim")  # fmt: skip
        if not a.get("stored"):
            text.append(" " + _("not downloaded"), style="yellow")
        if a.get("note"):
            text.append(" — " + inert(a["note"], one_line=True), style="dim")
    return text


class MessageCard(Static):
    """One message of the thread; notes and outgoing replies are set apart by class."""

    DEFAULT_CSS = """
    MessageCard { padding: 0 1; margin: 0 0 1 0; border-left: thick $primary; }
    MessageCard.out { border-left: thick $success; }
    MessageCard.note { border-left: thick $warning; background: $warning 10%; }
    """

    def __init__(self, message: dict[str, Any], now: datetime, *, show_quotes: bool) -> None:
        super().__init__(
            message_body(message, now, show_quotes=show_quotes),
            classes=message.get("direction", "in"),
        )
        self.message = message


def sla_clocks(doc: dict[str, Any], now: datetime) -> Text:
    text = Text()
    rows = [
        (_("First response"), doc.get("first_response_due_at"), doc.get("first_response_at")),
        (_("Resolution"), doc.get("resolution_due_at"), doc.get("solved_at")),
    ]
    for label, due_at, done_at in rows:
        text.append(f"{label}: ", style="bold")
        if done_at:
            d, done = _dt(due_at), _dt(done_at)
            late = d is not None and done is not None and done > d
            text.append(_("done") + " " + when(done, now), style="red" if late else "green")
        elif label == _("First response") and doc.get("first_response_queued"):
            text.append(_("reply queued, not delivered yet"), style="yellow")
        elif due_at:
            label_text, style = due(_dt(due_at), now)
            if label_text.startswith("-"):
                text.append(_("overdue by {t}").format(t=label_text[1:]), style=OVERDUE)
            else:
                text.append(_("due in {t}").format(t=label_text), style=style)
        else:
            text.append("—", style="dim")
        text.append("\n")
    if doc.get("status") == "pending":
        text.append(_("Clock paused while pending") + "\n", style="dim")
    text.rstrip()
    return text


def customer_card(doc: dict[str, Any], now: datetime) -> Text:
    cust = doc.get("customer") or {}
    text = Text()
    text.append(inert(cust.get("name") or _("(no name)"), one_line=True) + "\n", style="bold")
    if cust.get("company"):
        text.append(inert(cust["company"], one_line=True) + "\n")
    for ident in cust.get("identities") or []:
        kind = ident.get("kind", "")
        text.append(f"{kind_mark(kind)} {kind}: ", style="dim")
        text.append(inert(ident.get("address", ""), one_line=True))
        if ident.get("display") and ident["display"] != ident.get("address"):
            text.append(f" ({inert(ident['display'], one_line=True)})", style="dim")
        text.append("\n")
    if cust.get("phone"):
        text.append("☎ " + inert(cust["phone"], one_line=True) + "\n")
    if cust.get("language"):
        text.append(_("Language: ") + inert(cust["language"], one_line=True) + "\n", style="dim")
    if cust.get("notes"):
        text.append(inert(cust["notes"]) + "\n", style="italic")
    text.rstrip()
    return text


def history_text(doc: dict[str, Any], now: datetime, limit: int = 30) -> Text:
    text = Text()
    hist = doc.get("history") or []
    if not hist:
        text.append(_("No other tickets."), style="dim")
        return text
    for h in hist[:limit]:
        text.append(f"#{h['id']} ", style="bold")
        text.append(f"{kind_mark(h.get('kind', ''))} ")
        text.append(
            status_label(h.get("status", "")), style=STATUS_STYLE.get(h.get("status", ""), "")
        )
        created = _dt(h.get("created_at"))
        text.append(f" {span((now - created).total_seconds()) if created else ''}\n", style="dim")
        text.append("  " + inert(h.get("subject", ""), one_line=True) + "\n")
    if len(hist) > limit:
        text.append(_("… and {n} more").format(n=len(hist) - limit), style="dim")
    text.rstrip()
    return text


def ticket_headline(doc: dict[str, Any], now: datetime) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"#{doc['id']} ", style="bold")
    text.append(inert(doc.get("subject", ""), one_line=True), style="bold")
    return text


def ticket_meta(doc: dict[str, Any], now: datetime) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(status_label(doc["status"]), style=STATUS_STYLE.get(doc["status"], ""))
    text.append(" · ")
    text.append(priority_label(doc["priority"]), style=PRIORITY_STYLE.get(doc["priority"], ""))
    text.append(
        f" · {kind_mark(doc.get('kind', ''))} {inert(doc.get('channel', ''), one_line=True)}"
    )
    text.append(" · " + _("assignee") + " ")
    text.append(inert(doc.get("assignee") or "—", one_line=True), style="bold")
    if doc.get("group"):
        text.append(" · " + _("group") + " " + inert(doc["group"], one_line=True))
    if doc.get("tags"):
        text.append(" · ")
        text.append(inert(" ".join(doc["tags"]), one_line=True), style="cyan")
    snoozed = _dt(doc.get("snoozed_until"))
    if snoozed and snoozed > now:
        text.append(" · 💤 " + when(snoozed, now), style="dim")
    d, style = due(_dt(doc.get("due_at")), now, bool(doc.get("sla_breached")))
    if d:
        text.append(" · SLA ")
        text.append(d, style=style)
    return text


def preview_text(doc: dict[str, Any], now: datetime, *, lines: int = 6) -> Text:
    """The queue's preview: headline, meta, customer and the start of the last message."""
    text = Text()
    text.append_text(ticket_headline(doc, now))
    text.append("\n")
    text.append_text(ticket_meta(doc, now))
    text.append("\n")
    cust = doc.get("customer") or {}
    idents = ", ".join(f"{i['kind']}:{i['address']}" for i in cust.get("identities") or [])
    text.append(inert(f"{cust.get('name') or ''} {idents}".strip(), one_line=True), style="dim")
    msgs = [m for m in doc.get("messages") or [] if m.get("direction") != "note"] or list(
        doc.get("messages") or []
    )
    if msgs:
        last = msgs[-1]
        text.append("\n")
        text.append_text(message_header(last, now))
        body = inert(last.get("text") or "").strip().splitlines()[:lines]
        for line in body:
            text.append("\n" + line)
    return text
