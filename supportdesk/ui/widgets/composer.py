"""The reply composer, shown beside the thread (from 100 columns) or in its place (a key flips
between them, the draft kept): recipients (To, Cc, Bcc, reply-all), templates, knowledge-base
excerpts, files, $EDITOR, reply-or-note, and a preview of exactly what goes out before it is
queued ("send", "send and set pending", "send and solve").

Long because: recipients, the body, attachments, the preview and the collision warnings all act
on one draft.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Label, Select, Static, TextArea

from supportdesk.channels.registry import channel_kind, configured_class
from supportdesk.core.editor import EditorError, edit_text
from supportdesk.core.i18n import _
from supportdesk.core.text import inert
from supportdesk.desk.desk import Desk, ServiceError
from supportdesk.outbound.window import window_notice
from supportdesk.replies.templates import (
    fill_for_ticket,
    render_reply,
    template_rows,
    unfilled,
)
from supportdesk.tickets import replying
from supportdesk.tickets.views import Article, kb_choices
from supportdesk.ui.screens.dialogs import PickerScreen, PickItem
from supportdesk.ui.widgets.thread import size_text
from supportdesk.ui.widgets.translate import translate_bindings

if TYPE_CHECKING:
    from supportdesk.ui.app import SupportDeskApp


def reply_routes(desk: Desk, doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(channel, label) pairs the customer can be answered on; the ticket's own channel first."""
    own = doc.get("channel", "")
    routes = [(own, _("{channel} (this conversation)").format(channel=own))]
    idents = (doc.get("customer") or {}).get("identities") or []
    for ch in desk.config.channel:
        if ch.name == own:
            continue
        kind = channel_kind(ch)
        if kind == doc.get("kind"):
            routes.append((ch.name, ch.name))
            continue
        ident = next((i for i in idents if i.get("kind") == kind), None)
        if ident is not None:
            routes.append((ch.name, f"{ch.name} → {ident.get('display') or ident.get('address')}"))
    return routes


def kb_excerpt(article: Article, public_url: str | None, limit: int = 600) -> str:
    """A clean excerpt of an article to paste into a reply: no Markdown headings, the first
    paragraphs up to ``limit`` characters, and the public link when the article has one."""
    paras: list[str] = []
    for block in re.split(r"\n\s*\n", article.body.strip()):
        lines = [ln for ln in block.strip().splitlines() if not ln.lstrip().startswith("#")]
        text = "\n".join(lines).strip()
        if text:
            paras.append(text)
    out = ""
    for p in paras:
        if out and len(out) + len(p) > limit:
            break
        out += ("\n\n" if out else "") + p
    if len(out) > limit:
        out = out[:limit].rsplit(" ", 1)[0] + "…"
    if public_url:
        out += "\n\n" + _("More: {url}").format(url=public_url)
    return out


class Composer(Vertical):
    """Writes one reply (or note) for the ticket in ``doc``; posts :class:`Composer.Done`."""

    BINDINGS = [
        Binding(
            "ctrl+s",
            "preview",
            "Send…",
            id="composer.send",
            tooltip="Preview exactly what goes out, then send.",
        ),  # fmt: skip
        Binding(
            "ctrl+t",
            "template",
            "Template",
            id="composer.template",
            tooltip="Insert a canned reply.",
        ),  # fmt: skip
        Binding(
            "ctrl+g",
            "kb",
            "KB",
            id="composer.kb",
            tooltip="Insert a knowledge-base excerpt with its link.",
        ),  # fmt: skip
        Binding("ctrl+f", "attach", "File", id="composer.attach", tooltip="Attach a file."),
        Binding(
            "ctrl+r",
            "reply_all",
            "All",
            id="composer.reply_all",
            tooltip="Reply to all: everyone on the thread in Cc (again: only the customer).",
        ),  # fmt: skip
        Binding(
            "f2",
            "flip",
            "Thread",
            id="composer.flip",
            tooltip="Narrow screens: switch between the thread and the draft.",
        ),  # fmt: skip
        Binding(
            "ctrl+o",
            "editor",
            "$EDITOR",
            show=False,
            id="composer.editor",
            tooltip="Write in your editor.",
        ),  # fmt: skip
        Binding(
            "ctrl+n",
            "toggle_note",
            "Reply/Note",
            show=False,
            id="composer.note",
            tooltip="Switch between reply and internal note.",
        ),  # fmt: skip
        Binding(
            "escape",
            "cancel",
            "Close",
            id="composer.cancel",
            tooltip="Close the composer; the draft is kept.",
        ),  # fmt: skip
    ]

    class FlipRequested(Message):
        """The agent asked to flip between the thread and the composer (narrow screens)."""

    class Done(Message):
        def __init__(self, sent: bool) -> None:
            super().__init__()
            self.sent = sent

    def __init__(self, desk: Desk, doc: dict[str, Any], *, note: bool = False) -> None:
        super().__init__(id="composer")
        translate_bindings(self)
        self.desk = desk
        self.doc = doc
        self.ticket_id = int(doc["id"])
        self.note = note
        self.routes = reply_routes(desk, doc)
        self.template_name: str | None = None
        self.files: list[Path] = []
        cls = configured_class(desk.config, str(doc.get("channel", "")), str(doc.get("kind", "")))
        # Cc, Bcc and another To: a channel that addresses e-mail (its capabilities say so)
        self.email = cls is not None and cls.capabilities.cc
        # what the agent has seen: a customer message newer than this warns before sending
        self.seen_message_id = max((int(m["id"]) for m in doc.get("messages", [])), default=None)
        self.collision_warned = False

    @property
    def deskapp(self) -> SupportDeskApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="composer-title")
        for name, label in (("to", _("To")), ("cc", _("Cc")), ("bcc", _("Bcc"))):
            with Horizontal(classes="rcpt", id=f"rcpt-{name}"):
                yield Label(label, classes="rcpt-label")
                yield Input(id=name, classes="rcpt-input")
        with Horizontal(id="composer-options"):
            yield Static(Text(_("Answer on") + ": "), id="route-label")
            yield Select(
                [(label, name) for name, label in self.routes],
                value=self.routes[0][0],
                allow_blank=False,
                id="route",
            )
        yield Static(id="composer-files")
        yield TextArea(self.deskapp.drafts.get(self.ticket_id, ""), id="body", soft_wrap=True)
        yield Static(id="composer-error")

    def on_mount(self) -> None:
        self.query_one("#to", Input).value = self.doc.get("reply_to") or ""
        self._update()
        self.query_one("#composer-error").display = False
        self.body.focus()
        self._window_notice()

    def _window_notice(self, channel: str | None = None) -> None:
        """Outside a channel's reply window (WhatsApp: 24 hours) only an approved template can
        go out: say so before the agent writes."""
        notice = None if self.note else window_notice(self.desk, self.ticket_id, channel)
        self.show_error(notice)

    @on(Select.Changed, "#route")
    def _route_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self._window_notice(event.value)

    def _update(self) -> None:
        title = Text(no_wrap=True, overflow="ellipsis")
        if self.note:
            title.append(" " + _("Internal note") + " ", style="bold black on yellow")
        else:
            title.append(" " + _("Reply") + " ", style="bold black on green")
        title.append(f" #{self.ticket_id} ")
        title.append(inert(self.doc.get("subject", ""), one_line=True), style="bold")
        cust = self.doc.get("customer") or {}
        if not self.note and not self.email and cust.get("name"):
            title.append("  → " + inert(cust["name"], one_line=True), style="dim")
        self.query_one("#composer-title", Static).update(title)
        for name in ("to", "cc", "bcc"):
            self.query_one(f"#rcpt-{name}").display = self.email and not self.note
        self.query_one("#composer-options").display = len(self.routes) > 1 and not self.note
        files = self.query_one("#composer-files", Static)
        if self.files:
            from supportdesk.outbound.outbox import attachment_limit

            total = sum(p.stat().st_size for p in self.files if p.exists())
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append("📎 ")
            line.append(", ".join(f"{inert(p.name, one_line=True)} ({size_text(p.stat().st_size)})"
                                  for p in self.files if p.exists()))  # fmt: skip
            limit = attachment_limit(str(self.doc.get("kind", "email")))
            line.append("  " + _("{total} of {limit}").format(
                total=size_text(total), limit=size_text(limit)), style="dim")  # fmt: skip
            files.update(line)
        files.display = bool(self.files)

    def show_error(self, message: str | None) -> None:
        err = self.query_one("#composer-error", Static)
        if message:
            err.update(Text("⚠ " + inert(message, one_line=True), style="bold red"))
        err.display = bool(message)

    @property
    def body(self) -> TextArea:
        return self.query_one("#body", TextArea)

    def addresses(self, name: str) -> list[str]:
        value = self.query_one(f"#{name}", Input).value
        return [a.strip() for a in value.replace(";", ",").split(",") if a.strip()]

    def to_override(self) -> str | None:
        """The To address when the agent changed it (else the ticket's own is used)."""
        to = self.addresses("to")
        if not self.email or self.note or not to or to[0] == self.doc.get("reply_to"):
            return None
        return to[0]

    def keep_draft(self) -> None:
        text = self.body.text
        if text.strip():
            self.deskapp.drafts[self.ticket_id] = text
        else:
            self.deskapp.drafts.pop(self.ticket_id, None)

    # -- actions ----------------------------------------------------------------------------

    def action_toggle_note(self) -> None:
        self.note = not self.note
        self._update()

    def action_flip(self) -> None:
        self.post_message(self.FlipRequested())

    def action_cancel(self) -> None:
        self.keep_draft()
        if self.body.text.strip():
            self.notify(_("Draft kept."), markup=False, timeout=2)
        self.post_message(self.Done(False))

    def action_reply_all(self) -> None:
        cc = self.query_one("#cc", Input)
        others = [a for a in self.doc.get("participants") or [] if a not in self.addresses("cc")]
        if others:
            cc.value = ", ".join([*self.addresses("cc"), *others])
            self.notify(_("Reply to all: {n} more in Cc.").format(n=len(others)), markup=False)
        else:
            everyone = set(self.doc.get("participants") or [])
            kept = [a for a in self.addresses("cc") if a not in everyone]
            cc.value = ", ".join(kept)
            self.notify(_("Reply to the customer only."), markup=False)

    def rendered_text(self) -> str:
        text = self.body.text
        if "{{" in text or "{%" in text:
            text = render_reply(self.desk, text, self.ticket_id)
        return text

    def _route(self) -> str | None:
        route = self.query_one("#route", Select).value
        return route if isinstance(route, str) and not self.note else None

    def action_preview(self) -> None:
        from supportdesk.ui.screens.composer import PreviewScreen

        if not self.body.text.strip() and not self.files:
            self.show_error(_("The reply is empty."))
            return
        if not self.note and not self.collision_warned and self.warn_newer():
            return
        try:
            text = self.rendered_text()
            preview = replying.preview_reply(
                self.desk, self.ticket_id, text=text, note=self.note, channel=self._route(),
                to=self.to_override(), cc=self.addresses("cc") if self.email else None,
                bcc=self.addresses("bcc") if self.email else None, attachments=self.files,
            )  # fmt: skip
        except ServiceError as exc:
            self.show_error(str(exc))
            return
        self.show_error(None)

        def decided(choice: str | None) -> None:
            if choice:
                self.send(text, None if choice == "send" else choice)

        self.app.push_screen(PreviewScreen(preview), decided)

    def send(self, text: str, status: str | None = None) -> bool:
        try:
            replying.reply(
                self.desk, self.ticket_id, text=text, note=self.note, channel=self._route(),
                to=self.to_override(),
                cc=self.addresses("cc") if self.email and not self.note else None,
                bcc=self.addresses("bcc") if self.email and not self.note else None,
                attachments=self.files, status=status, from_template=self.template_name,
            )  # fmt: skip
        except ServiceError as exc:
            self.show_error(str(exc))
            return False
        self.deskapp.drafts.pop(self.ticket_id, None)
        done = _("Note saved.") if self.note else _("Reply queued.")
        if status == "solved":
            done = _("Reply queued; the ticket is solved.")
        elif status == "pending":
            done = _("Reply queued; the ticket is pending.")
        self.notify(done, markup=False, timeout=3)
        self.post_message(self.Done(True))
        return True

    def warn_newer(self) -> bool:
        """Say (once) that the customer wrote again while this reply was drafted."""
        from supportdesk.tickets.collisions import newer_customer_messages

        newer = newer_customer_messages(self.desk, self.ticket_id, self.seen_message_id)
        if not newer:
            return False
        self.collision_warned = True
        first = inert(newer[0].text, one_line=True)[:80]
        self.show_error(
            _(
                "The customer wrote {n} new message(s) while you were writing: “{text}”. "
                "Press ctrl+s again to send anyway."
            ).format(n=len(newer), text=first)
        )
        return True

    def action_attach(self) -> None:
        from supportdesk.ui.screens.composer import AttachScreen

        def picked(path: str | None) -> None:
            if not path or not path.strip():
                return
            p = Path(path.strip()).expanduser()
            if not p.is_file():
                self.show_error(_("{path} is not a file.").format(path=p))
                return
            from supportdesk.outbound.outbox import attachment_limit

            limit = attachment_limit(str(self.doc.get("kind", "email")))
            total = sum(f.stat().st_size for f in self.files) + p.stat().st_size
            if total > limit:
                self.show_error(
                    _("{name} is too big: this channel takes {limit} per message.").format(
                        name=p.name, limit=size_text(limit)))  # fmt: skip
                return
            self.files.append(p)
            self.show_error(None)
            self._update()
            self.body.focus()

        self.app.push_screen(AttachScreen(str(self.doc.get("kind", "email"))), picked)

    def action_template(self) -> None:
        templates = [
            (r["name"], r["subject"], r["body"], r["language"])
            for r in template_rows(self.desk, body=True)
        ]
        if not templates:
            self.notify(_("There are no templates yet (supportdesk templates add)."), markup=False)
            return
        items = [
            PickItem(
                name,
                name,
                " · ".join(x for x in (lang, subject or body.strip().split("\n")[0]) if x),
            )
            for name, subject, body, lang in templates
        ]
        self.app.push_screen(PickerScreen(_("Template"), items), self.insert_template)

    def insert_template(self, name: str | None) -> None:
        if name is None:
            return
        text, missing = self.fill_template(name)
        self.template_name = name
        self.insert_block(text)
        if missing:
            self.show_error(_("Fill in before sending: {names}").format(names=", ".join(missing)))
        else:
            self.show_error(None)

    def insert_block(self, text: str) -> None:
        """Insert ``text`` at the cursor as its own paragraph (never glued to a sentence)."""
        area = self.body
        row, col = area.cursor_location
        lines = area.text.split("\n")
        before = "\n".join(lines[:row] + [lines[row][:col] if row < len(lines) else ""])
        after = (lines[row][col:] if row < len(lines) else "") + "\n".join([""] + lines[row + 1 :])
        sep_before = (
            ""
            if not before.strip()
            else (
                "\n" if before.endswith("\n\n") else "\n\n" if not before.endswith("\n") else "\n"
            )
        )
        sep_after = "" if not after.strip() else "\n\n"
        area.insert(sep_before + text.strip("\n") + sep_after)
        area.focus()

    def fill_template(self, name: str) -> tuple[str, list[str]]:
        """The template's text for this ticket, and the placeholders left to fill by hand."""
        return fill_for_ticket(self.desk, name, self.ticket_id)

    def action_kb(self) -> None:
        articles = kb_choices(self.desk, self.ticket_id)
        if not articles:
            self.notify(_("The knowledge base is empty."), markup=False)
            return
        items = [PickItem(("★ " if a.suggested else "") + a.title, a, a.tags) for a in articles]
        self.app.push_screen(PickerScreen(_("Knowledge base"), items), self.insert_article)

    def insert_article(self, article: Article | None) -> None:
        if article is None:
            return
        from supportdesk.replies.kb import public_link

        url = public_link(self.desk, article.id)
        self.insert_block(kb_excerpt(article, url))

    def action_editor(self) -> None:
        try:
            with self.app.suspend():
                text = edit_text(
                    self.body.text, suffix=".txt", prefix=f"supportdesk-{self.ticket_id}-"
                )
        except SuspendNotSupported:
            self.show_error(_("This terminal cannot hand over to an editor."))
            return
        except EditorError as exc:
            self.show_error(str(exc))
            return
        self.body.load_text(text.rstrip("\n"))
        self.show_error(None)
        self.refresh()

    @on(TextArea.Changed, "#body")
    def _changed(self) -> None:
        if (
            self.query_one("#composer-error").display
            and not self.collision_warned
            and not unfilled(self.body.text)
        ):
            self.show_error(None)
