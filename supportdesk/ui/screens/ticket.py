"""One ticket: the thread, the customer card with every identity and the customer's history
across channels, the SLA clocks, attachments, and who else is looking at it.

Long because: the ticket screen holds the thread, the customer card, the composer beside them,
attachments and the triage keys; they share the loaded ticket.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from supportdesk.core.i18n import _
from supportdesk.core.text import inert
from supportdesk.desk.desk import Desk, ServiceError
from supportdesk.people import presence
from supportdesk.tickets.attachments import (
    StorageError,
    default_destination,
    save_attachment,
    stored_file,
)
from supportdesk.tickets.read import show_ticket
from supportdesk.ui.screens.dialogs import ConfirmScreen, PickerScreen, PickItem, PromptScreen
from supportdesk.ui.screens.triage import TRIAGE_BINDINGS, TriageMixin
from supportdesk.ui.widgets.key_bar import KeyBar
from supportdesk.ui.widgets.status_bar import StatusBar
from supportdesk.ui.widgets.thread import (
    MessageCard,
    customer_card,
    history_text,
    size_text,
    sla_clocks,
    ticket_headline,
    ticket_meta,
)
from supportdesk.ui.widgets.translate import translate_bindings

if TYPE_CHECKING:
    from supportdesk.ui.app import SupportDeskApp

HEARTBEAT_SECONDS = 10.0
SIDE_MIN_WIDTH = 100


def system_opener() -> list[str] | None:
    """The command that opens a file with the user's default application, if there is one."""
    names = ["open"] if sys.platform == "darwin" else ["xdg-open"]
    for name in names:
        path = shutil.which(name)
        if path:
            return [path]
    return None


class TicketScreen(TriageMixin, Screen[None]):
    BINDINGS = [
        Binding("escape", "back", "Back", id="ticket.back", tooltip="Back to the queue."),
        Binding("r", "reply", "Reply", id="ticket.reply", tooltip="Reply to the customer."),
        Binding("n", "note", "Note", id="ticket.note", tooltip="Add an internal note."),
        Binding("m", "assign_me", "Take", show=False, id="ticket.take", tooltip="Assign to me."),
        *TRIAGE_BINDINGS,
        Binding(
            "f",
            "fold",
            "Quotes",
            show=False,
            id="ticket.fold",
            tooltip="Show or fold quoted history.",
        ),
        Binding(
            "w",
            "save_attachment",
            "Save file",
            show=False,
            id="ticket.save",
            tooltip="Save an attachment to a path.",
        ),
        Binding(
            "o",
            "open_attachment",
            "Open file",
            show=False,
            id="ticket.open_file",
            tooltip="Open an attachment with the system opener.",
        ),
        Binding(
            "i",
            "toggle_side",
            "Customer",
            show=False,
            id="ticket.side",
            tooltip="Show or hide the customer panel.",
        ),
        Binding(
            "h",
            "history",
            "History",
            show=False,
            id="ticket.history",
            tooltip="Open another ticket of this customer.",
        ),
        Binding("ctrl+r", "refresh", "Refresh", show=False, id="ticket.refresh"),
        Binding(
            "H",
            "html",
            "HTML",
            show=False,
            id="ticket.html",
            tooltip="Show HTML mail laid out (lists, tables, links as numbered notes).",
        ),
        Binding(
            "B",
            "browser",
            "Browser",
            show=False,
            id="ticket.browser",
            tooltip="Open the newest HTML mail, sanitised, in $BROWSER.",
        ),
        Binding(
            "F",
            "forward",
            "Forward",
            show=False,
            id="ticket.forward",
            tooltip="Forward the ticket (or one message) with its files to an address.",
        ),
        Binding(
            "f2",
            "flip_composer",
            "Draft",
            id="ticket.flip",
            tooltip="Back to the draft (narrow screens show the thread or the draft).",
        ),  # fmt: skip
    ]

    def __init__(self, desk: Desk, ticket_id: int, *, compose: str | None = None) -> None:
        super().__init__()
        translate_bindings(self)
        self.desk = desk
        self.ticket_id = ticket_id
        self.doc: dict[str, Any] = {}
        self.show_quotes = False
        self.activity = "viewing"
        self._compose_on_mount = compose
        self._stale = False
        self._fresh = True
        self.show_thread = False  # narrow screens: the thread instead of the draft
        self.show_html = False
        self._html_text: dict[int, str] = {}

    @property
    def deskapp(self) -> SupportDeskApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical(id="ticket-head"):
            yield Static(id="ticket-title")
            yield Static(id="presence")
        with Horizontal(id="ticket-main"):
            yield VerticalScroll(id="thread")
            with VerticalScroll(id="side"):
                yield Static(id="side-panel")
        yield StatusBar(id="status")
        yield KeyBar()

    def show(self, ticket_id: int, *, compose: str | None = None) -> None:
        """Show another ticket in this (reused) screen; takes effect when it is pushed."""
        if ticket_id != self.ticket_id and self.is_mounted:
            self._leave()
        self.ticket_id = ticket_id
        self._compose_on_mount = compose
        self.show_quotes = False
        self.activity = "viewing"
        self._fresh = True

    def on_mount(self) -> None:
        self.query_one("#side").display = self.app.size.width >= SIDE_MIN_WIDTH
        self.query_one("#presence").display = False
        self.set_interval(HEARTBEAT_SECONDS, self._heartbeat)

    # -- the composer beside the thread -------------------------------------------------------

    @property
    def composer(self) -> Any:
        from supportdesk.ui.widgets.composer import Composer

        found = self.query(Composer)
        return found.first() if found else None

    def layout_composer(self) -> None:
        """From 100 columns the draft sits beside the thread; below, one of them fills the
        screen (f2 flips). The customer panel makes room while composing."""
        composer = self.composer
        thread = self.query_one("#thread")
        wide = self.app.size.width >= SIDE_MIN_WIDTH
        if composer is None:
            thread.display = True
            return
        self.query_one("#side").display = False
        if wide:
            thread.display = composer.display = True
        else:
            thread.display = self.show_thread
            composer.display = not self.show_thread
        self.refresh_bindings()

    def on_resize(self) -> None:
        self.layout_composer()

    def flip_composer(self) -> None:
        composer = self.composer
        if composer is None:
            return
        if self.app.size.width >= SIDE_MIN_WIDTH:
            if composer.body.has_focus:
                self.query_one("#thread").focus()
            else:
                composer.body.focus()
            return
        self.show_thread = not self.show_thread
        self.layout_composer()
        if self.show_thread:
            self.query_one("#thread").focus()
        else:
            composer.body.focus()

    def action_flip_composer(self) -> None:
        self.flip_composer()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "flip_composer":
            return self.composer is not None
        return True

    def _open_fresh(self) -> None:
        self._fresh = False
        self._stale = False
        if not self.load():
            return
        thread = self.query_one("#thread", VerticalScroll)
        thread.scroll_home(animate=False)
        thread.focus()
        self.query_one("#presence").display = False
        self._heartbeat()
        if self._compose_on_mount:
            mode, self._compose_on_mount = self._compose_on_mount, None
            self.call_after_refresh(self.open_composer, mode == "note")

    def load(self) -> bool:
        try:
            doc = show_ticket(self.desk, self.ticket_id)
        except ServiceError as exc:
            self.notify(str(exc), severity="error", markup=False)
            self.app.pop_screen()
            return False
        self.doc = doc
        self.render_doc()
        return True

    def render_doc(self) -> None:
        doc = self.doc
        now = self.deskapp.now()
        title = ticket_headline(doc, now)
        title.append("\n")
        title.append_text(ticket_meta(doc, now))
        self.query_one("#ticket-title", Static).update(title)
        side = Text()
        for heading, part in (
            (_("Customer"), customer_card(doc, now)),
            (_("SLA"), sla_clocks(doc, now)),
            (_("Other tickets"), history_text(doc, now)),
        ):
            side.append(heading + "\n", style="bold underline")
            side.append_text(part)
            side.append("\n\n")
        side.rstrip()
        self.query_one("#side-panel", Static).update(side)
        if self.show_html:
            for m in doc.get("messages", []):
                if m.get("html") and m["direction"] == "in":
                    m["html_text"] = self._readable(int(m["id"]))
        thread = self.query_one("#thread", VerticalScroll)
        at_end = thread.scroll_y >= thread.max_scroll_y - 1
        with self.app.batch_update():
            thread.remove_children()
            thread.mount_all(
                [MessageCard(m, now, show_quotes=self.show_quotes) for m in doc.get("messages", [])]
            )
        if at_end:
            thread.call_after_refresh(thread.scroll_end, animate=False)

    # -- presence ---------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="presence")
    def _heartbeat(self) -> None:
        if self not in self.app.screen_stack:
            return  # a reused screen that is not showing: hold no lease
        try:
            presence.heartbeat(self.desk, self.ticket_id, self.activity)
            others = presence.others(self.desk, self.ticket_id)
        except Exception:  # presence is a courtesy: never let it take the screen down
            return
        self.app.call_from_thread(self._show_presence, others)

    def set_activity(self, activity: str) -> None:
        self.activity = activity
        self._heartbeat()

    def refresh_presence(self) -> None:
        self._heartbeat()

    def _show_presence(self, others: list[presence.Present]) -> None:
        widget = self.query_one("#presence", Static)
        if not others:
            widget.display = False
            return
        text = Text()
        for i, p in enumerate(others):
            if i:
                text.append(" · ")
            msg = _("{agent} is replying") if p.activity == "replying" else _("{agent} is viewing")
            text.append("👁 " + msg.format(agent=inert(p.agent, one_line=True)),
                        style="bold magenta" if p.activity == "replying" else "magenta")  # fmt: skip
        widget.update(text)
        widget.display = True

    def _leave(self) -> None:
        try:
            presence.leave(self.desk, self.ticket_id)
        except Exception:  # the database may be gone at shutdown; the lease expires anyway
            pass

    def on_unmount(self) -> None:
        self._leave()

    # -- actions ----------------------------------------------------------------------------

    def action_back(self) -> None:
        self._leave()
        self.app.pop_screen()

    def action_reply(self) -> None:
        self.open_composer(False)

    def action_note(self) -> None:
        self.open_composer(True)

    def open_composer(self, note: bool) -> None:
        from supportdesk.ui.widgets.composer import Composer

        current = self.composer
        if current is not None:
            if current.note != note:
                current.action_toggle_note()
            self.show_thread = False
            self.layout_composer()
            current.body.focus()
            return
        self.set_activity("replying")
        self.show_thread = False
        composer = Composer(self.desk, self.doc, note=note)
        self.query_one("#ticket-main").mount(composer)
        self.layout_composer()

    def on_composer_flip_requested(self, _message: Any) -> None:
        self.flip_composer()

    def on_composer_done(self, message: Any) -> None:
        composer = self.composer
        if composer is not None:
            composer.remove()
        self.set_activity("viewing")
        self.show_thread = False
        self.call_after_refresh(self._after_composer, bool(message.sent))

    def _after_composer(self, sent: bool) -> None:
        self.query_one("#thread").display = True
        self.query_one("#side").display = self.app.size.width >= SIDE_MIN_WIDTH
        self.refresh_bindings()
        if sent:
            self.load()
        self.query_one("#thread").focus()

    def _readable(self, message_id: int) -> str:
        got = self._html_text.get(message_id)
        if got is None:
            from supportdesk.core.markup import html_to_readable
            from supportdesk.tickets.read import message_html

            try:
                got = html_to_readable(message_html(self.desk, self.ticket_id, message_id) or "")
            except Exception:  # a mail that cannot be laid out keeps its text part
                got = ""
            self._html_text[message_id] = got
        return got

    def action_html(self) -> None:
        if not any(m.get("html") for m in self.doc.get("messages", [])):
            self.notify(_("No message of this ticket came as HTML."), markup=False)
            return
        self.show_html = not self.show_html
        if not self.show_html:
            for m in self.doc.get("messages", []):
                m.pop("html_text", None)
        self.render_doc()

    def action_browser(self) -> None:
        import os
        import shlex
        import tempfile

        from supportdesk.core.markup import sanitized_page
        from supportdesk.tickets.read import message_html

        newest = [m for m in self.doc.get("messages", []) if m.get("html")]
        if not newest:
            self.notify(_("No message of this ticket came as HTML."), markup=False)
            return
        m = newest[-1]
        html = message_html(self.desk, self.ticket_id, int(m["id"])) or ""
        folder = Path(tempfile.mkdtemp(prefix="supportdesk-html-"))  # 0700
        page = folder / f"ticket-{self.ticket_id}-message-{m['id']}.html"
        fd = os.open(page, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(sanitized_page(html, title=str(self.doc.get("subject", ""))))
        browser = os.environ.get("BROWSER")
        command = [*shlex.split(browser), str(page)] if browser else None
        if command is None:
            opener = system_opener()
            command = [*opener, str(page)] if opener else None
        if command is None:
            self.notify(_("Set $BROWSER to open HTML mail; the sanitised copy is {path}").format(
                path=page), markup=False)  # fmt: skip
            return
        try:
            subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        except OSError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.notify(_("Opened a sanitised copy in the browser."), markup=False)

    def action_forward(self) -> None:
        messages = [m for m in self.doc.get("messages", []) if m["direction"] in ("in", "out")]
        items: list[PickItem[int]] = [
            PickItem(_("The whole ticket"), 0, _("every message and file"))
        ]
        for m in reversed(messages):
            arrow = "←" if m["direction"] == "in" else "→"
            who = m.get("author") or m.get("author_address") or ""
            items.append(PickItem(f"{arrow} {who}", int(m["id"]),
                                  inert(m.get("text", ""), one_line=True)[:60]))  # fmt: skip

        def picked(which: int | None) -> None:
            if which is None:
                return

            def entered(address: str | None) -> None:
                if not address or not address.strip():
                    return
                from supportdesk.tickets import outgoing

                self.run_service(
                    lambda: outgoing.forward(
                        self.desk, self.ticket_id, to=address.strip(), message_id=which or None
                    ),  # fmt: skip
                    _("Forward to {to} queued.").format(to=address.strip()),
                )

            self.app.push_screen(PromptScreen(_("Forward to"), placeholder="name@example.com"),
                                 entered)  # fmt: skip

        self.app.push_screen(PickerScreen(_("Forward what?"), items), picked)

    def action_fold(self) -> None:
        self.show_quotes = not self.show_quotes
        self.render_doc()

    def action_toggle_side(self) -> None:
        side = self.query_one("#side")
        side.display = not side.display

    def _attachments(self) -> list[PickItem[dict[str, Any]]]:
        items: list[PickItem[dict[str, Any]]] = []
        for m in self.doc.get("messages", []):
            for a in m.get("attachments", []):
                if a.get("stored"):
                    items.append(
                        PickItem(
                            a["filename"],
                            a,
                            f"{size_text(int(a.get('size') or 0))} · {m.get('author', '')}",
                        )
                    )
        return items

    def _pick_attachment(self, title: str, then: Callable[[dict[str, Any]], object]) -> None:
        """Ask which stored attachment (a warning when there is none), then call ``then``."""
        items = self._attachments()
        if not items:
            self.notify(
                _("This ticket has no stored attachments."), severity="warning", markup=False
            )
            return

        def picked(att: dict[str, Any] | None) -> None:
            if att is not None:
                then(att)

        self.app.push_screen(PickerScreen(title, items), picked)

    def action_save_attachment(self) -> None:
        def picked(att: dict[str, Any]) -> None:
            folder, default_path = default_destination(self.ticket_id, att["filename"])
            default = str(default_path)

            def entered(dest: str | None) -> None:
                if not dest or not dest.strip():
                    return
                path = Path(dest.strip()).expanduser()
                if path.is_dir():
                    path = path / default_path.name
                if str(path) == default:
                    self.save_attachment(att, path, free_name=True)
                    return
                inside = folder in path.absolute().parents
                if inside:
                    self.save_attachment(att, path)
                    return

                def confirmed(yes: bool | None) -> None:
                    if yes:
                        self.save_attachment(att, path)

                self.app.push_screen(
                    ConfirmScreen(
                        _("Save outside {folder}, as {path}?").format(folder=folder, path=path)
                    ),
                    confirmed,
                )

            self.app.push_screen(PromptScreen(_("Save to"), value=default), entered)

        self._pick_attachment(_("Save which attachment?"), picked)

    def save_attachment(self, att: dict[str, Any], dest: Path, *, free_name: bool = False) -> bool:
        """Save a copy: never as a dotfile, never over an existing file (the default name in
        the downloads folder gets " (2)" instead), 0600."""
        try:
            dest = save_attachment(
                self.desk, self.ticket_id, int(att["id"]), dest, free_name=free_name
            )
        except StorageError as exc:
            self.notify(str(exc.strerror or exc), severity="error", markup=False)
            return False
        except OSError as exc:
            self.notify(
                _("Cannot save to {path}: {err}").format(path=dest, err=exc.strerror or exc),
                severity="error",
                markup=False,
            )
            return False
        self.notify(_("Saved {path}").format(path=dest), markup=False)
        return True

    def action_open_attachment(self) -> None:
        self._pick_attachment(_("Open which attachment?"), self.open_attachment)

    def open_attachment(self, att: dict[str, Any]) -> bool:
        opener = system_opener()
        if opener is None:
            self.notify(
                _(
                    "No system opener (xdg-open or open) is installed; save the file with w instead."
                ),
                severity="error",
                markup=False,
            )
            return False
        src = stored_file(self.desk, int(att["id"]))
        if src is None or not src.exists():
            self.notify(_("The file is not in the desk's storage."), severity="error", markup=False)
            return False
        try:
            subprocess.Popen(
                [*opener, str(src)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return False
        self.notify(_("Opening {name}").format(name=att["filename"]), markup=False)
        return True

    def action_history(self) -> None:
        hist = self.doc.get("history") or []
        if not hist:
            self.notify(_("No other tickets."), markup=False)
            return
        items = [PickItem(f"#{h['id']} {h['subject']}", int(h["id"]), f"{h['channel']} · {h['status']}")
                 for h in hist]  # fmt: skip

        def picked(tid: int | None) -> None:
            if tid is not None:
                self.deskapp.open_ticket(tid)

        self.app.push_screen(PickerScreen(_("Open a ticket of this customer"), items), picked)

    # -- triage and live updates ------------------------------------------------------------

    def triage_targets(self) -> list[int]:
        return [self.ticket_id]

    def after_change(self) -> None:
        self.load()

    def action_refresh(self) -> None:
        self.load()

    def desk_changed(self) -> None:
        if self.is_current:
            self.load()
            composer = self.composer
            if composer is not None and not composer.note and not composer.collision_warned:
                composer.warn_newer()
        else:
            self._stale = True

    def on_screen_resume(self) -> None:
        if self._fresh:
            self._open_fresh()
        elif self._stale:
            self._stale = False
            self.load()
        self.update_status()

    def update_status(self) -> None:
        self.query_one(StatusBar).show(self.desk.agent, self.deskapp.desk_status)
