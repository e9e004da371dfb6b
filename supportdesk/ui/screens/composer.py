"""The reply composer: a multi-line editor with templates, knowledge-base articles, $EDITOR,
the channel to answer on, and reply-or-note. Sending puts the reply in the outbox."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Select, Static, TextArea

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
from supportdesk.tickets import triage
from supportdesk.tickets.views import Article, kb_choices
from supportdesk.ui.screens.dialogs import PickerScreen, PickItem
from supportdesk.ui.widgets.key_bar import KeyBar
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
        if ch.type == doc.get("kind"):
            routes.append((ch.name, ch.name))
            continue
        ident = next((i for i in idents if i.get("kind") == ch.type), None)
        if ident is not None:
            routes.append((ch.name, f"{ch.name} → {ident.get('display') or ident.get('address')}"))
    return routes


class ComposerScreen(Screen[bool]):
    BINDINGS = [
        Binding(
            "ctrl+s",
            "send",
            "Send",
            id="composer.send",
            tooltip="Send the reply (or save the note).",
        ),
        Binding(
            "ctrl+t",
            "template",
            "Template",
            id="composer.template",
            tooltip="Insert a canned reply.",
        ),
        Binding("ctrl+g", "kb", "KB", id="composer.kb", tooltip="Insert a knowledge-base article."),
        Binding(
            "ctrl+o", "editor", "$EDITOR", id="composer.editor", tooltip="Write in your editor."
        ),
        Binding(
            "ctrl+n",
            "toggle_note",
            "Reply/Note",
            id="composer.note",
            tooltip="Switch between reply and internal note.",
        ),
        Binding(
            "escape", "cancel", "Cancel", id="composer.cancel", tooltip="Close; the draft is kept."
        ),
    ]

    def __init__(self, desk: Desk, doc: dict[str, Any], *, note: bool = False) -> None:
        super().__init__()
        translate_bindings(self)
        self.desk = desk
        self.doc = doc
        self.ticket_id = int(doc["id"])
        self.note = note
        self.routes = reply_routes(desk, doc)
        self.template_name: str | None = None
        # what the agent has seen: a customer message newer than this warns before sending
        self.seen_message_id = max((int(m["id"]) for m in doc.get("messages", [])), default=None)
        self.collision_warned = False

    @property
    def deskapp(self) -> SupportDeskApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="composer-title")
        with Horizontal(id="composer-options"):
            yield Static(Text(_("Answer on") + ": "), id="route-label")
            yield Select(
                [(label, name) for name, label in self.routes],
                value=self.routes[0][0],
                allow_blank=False,
                id="route",
            )
        yield TextArea(self.deskapp.drafts.get(self.ticket_id, ""), id="body", soft_wrap=True)
        yield Static(id="composer-error")
        yield KeyBar()

    def on_mount(self) -> None:
        self._update_title()
        self.query_one("#composer-error").display = False
        self.query_one("#composer-options").display = len(self.routes) > 1 and not self.note
        self.query_one("#body", TextArea).focus()
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

    def _update_title(self) -> None:
        title = Text(no_wrap=True, overflow="ellipsis")
        if self.note:
            title.append(" " + _("Internal note") + " ", style="bold black on yellow")
        else:
            title.append(" " + _("Reply") + " ", style="bold black on green")
        title.append(f" #{self.ticket_id} ")
        title.append(inert(self.doc.get("subject", ""), one_line=True), style="bold")
        cust = self.doc.get("customer") or {}
        if not self.note and cust.get("name"):
            title.append("  → " + inert(cust["name"], one_line=True), style="dim")
        self.query_one("#composer-title", Static).update(title)

    def show_error(self, message: str | None) -> None:
        err = self.query_one("#composer-error", Static)
        if message:
            err.update(Text("⚠ " + inert(message, one_line=True), style="bold red"))
        err.display = bool(message)

    @property
    def body(self) -> TextArea:
        return self.query_one("#body", TextArea)

    # -- actions ----------------------------------------------------------------------------

    def action_toggle_note(self) -> None:
        self.note = not self.note
        self.query_one("#composer-options").display = len(self.routes) > 1 and not self.note
        self._update_title()

    def action_cancel(self) -> None:
        text = self.body.text
        if text.strip():
            self.deskapp.drafts[self.ticket_id] = text
            self.notify(_("Draft kept."), markup=False, timeout=2)
        else:
            self.deskapp.drafts.pop(self.ticket_id, None)
        self.dismiss(False)

    def action_send(self) -> None:
        text = self.body.text
        if not text.strip():
            self.show_error(_("The reply is empty."))
            return
        route = self.query_one("#route", Select).value
        channel = route if isinstance(route, str) and not self.note else None
        if not self.note and not self.collision_warned and self._newer_customer_messages():
            return
        try:
            if "{{" in text or "{%" in text:
                text = render_reply(self.desk, text, self.ticket_id)
            triage.reply(self.desk, self.ticket_id, text=text, note=self.note, channel=channel)
        except ServiceError as exc:
            self.show_error(str(exc))
            return
        self.deskapp.drafts.pop(self.ticket_id, None)
        self.notify(_("Note saved.") if self.note else _("Reply queued."), markup=False, timeout=3)
        self.dismiss(True)

    def _newer_customer_messages(self) -> bool:
        """Warn once when the customer wrote again while this reply was drafted."""
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
        self.body.insert(text)
        self.body.focus()
        if missing:
            self.show_error(_("Fill in before sending: {names}").format(names=", ".join(missing)))
        else:
            self.show_error(None)

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
        self.body.insert(f"{article.title}\n\n{article.body.strip()}\n")
        self.body.focus()

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
        if self.query_one("#composer-error").display and not unfilled(self.body.text):
            self.show_error(None)
