"""The queue: views with counts, the ticket list, the search bar and a preview."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Input, OptionList, Static

from supportdesk.core.i18n import _
from supportdesk.core.text import inert
from supportdesk.desk.desk import Desk, ServiceError
from supportdesk.tickets import views
from supportdesk.tickets.read import show_ticket
from supportdesk.ui.screens.dialogs import PromptScreen
from supportdesk.ui.screens.triage import TRIAGE_BINDINGS, TriageMixin
from supportdesk.ui.widgets.key_bar import KeyBar
from supportdesk.ui.widgets.sidebar import ViewList, view_title
from supportdesk.ui.widgets.status_bar import StatusBar
from supportdesk.ui.widgets.thread import preview_text
from supportdesk.ui.widgets.ticket_list import TicketList
from supportdesk.ui.widgets.translate import translate_bindings

if TYPE_CHECKING:
    from supportdesk.ui.app import SupportDeskApp

WIDE = 110  # from this width on the sidebar shows by default
PREVIEW_DELAY = 0.06  # seconds


class QueueScreen(TriageMixin, Screen[None]):
    """The main screen."""

    BINDINGS = [
        Binding(
            "slash",
            "search",
            "Search",
            id="queue.search",
            tooltip="Search with the query language.",
        ),
        Binding("escape", "clear_search", "Clear", show=False, id="queue.clear"),
        Binding("r", "reply", "Reply", id="queue.reply", tooltip="Reply to the ticket."),
        Binding("n", "note", "Note", show=False, id="queue.note", tooltip="Add an internal note."),
        Binding("m", "assign_me", "Take", show=False, id="queue.take", tooltip="Assign to me."),
        *TRIAGE_BINDINGS,
        Binding(
            "v",
            "toggle_views",
            "Views",
            show=False,
            id="queue.views",
            tooltip="Show or hide the views.",
        ),
        Binding("tab", "focus_next_pane", "Next pane", show=False, id="queue.tab"),
        Binding(
            "S",
            "save_view",
            "Save view",
            show=False,
            id="queue.save_view",
            tooltip="Save the search as a view.",
        ),
        Binding("ctrl+r", "refresh", "Refresh", show=False, id="queue.refresh"),
    ]

    def __init__(self, desk: Desk) -> None:
        super().__init__()
        translate_bindings(self)
        self.desk = desk
        self.view: views.View | None = None
        self.search_text = ""
        self._stale = False
        self._preview_target: int | None = None

    @property
    def deskapp(self) -> SupportDeskApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Horizontal(id="queue-main"):
            yield ViewList(id="views")
            with Vertical(id="queue-body"):
                yield Static(id="queue-title")
                yield Input(
                    placeholder=_("/ to search: status:open tag:billing words…"), id="search"
                )
                yield Static(id="search-error")
                yield TicketList(self.desk, self.deskapp.now, id="tickets")
                yield Static(id="preview")
        yield StatusBar(id="status")
        yield KeyBar()

    def on_mount(self) -> None:
        all_views = views.all_views(self.desk)
        vl = self.query_one(ViewList)
        vl.set_views(all_views)
        vl.display = self.app.size.width >= WIDE
        self.query_one("#search-error").display = False
        self.show_view(all_views[0] if all_views else views.View("all", "All", ""))
        self.query_one(TicketList).focus()
        self.call_after_refresh(self._load_counts)  # counts after the first screen is drawn
        self.update_status()

    # -- views and search -------------------------------------------------------------------

    def show_view(self, view: views.View) -> None:
        self.view = view
        self.search_text = ""
        self.query_one("#search", Input).value = ""
        self._load(view.query)

    def _load(self, query: str, *, keep: int | None = None) -> bool:
        tl = self.query_one(TicketList)
        err = self.query_one("#search-error", Static)
        try:
            tl.load(query, keep=keep)
        except ServiceError as exc:
            err.update(Text("⚠ " + inert(str(exc), one_line=True)))
            err.display = True
            return False
        err.display = False
        self._update_title()
        return True

    def _update_title(self) -> None:
        tl = self.query_one(TicketList)
        title = Text(no_wrap=True, overflow="ellipsis")
        if self.search_text:
            title.append(_("Search") + ": ", style="bold")
            title.append(inert(self.search_text, one_line=True))
        elif self.view is not None:
            title.append(view_title(self.view).strip(), style="bold")
        title.append(f"  {tl.total}", style="dim")
        if tl.selected:
            title.append("  " + _("{n} selected").format(n=len(tl.selected)), style="bold magenta")
        self.query_one("#queue-title", Static).update(title)

    @on(OptionList.OptionSelected, "#views")
    def _view_chosen(self, event: OptionList.OptionSelected) -> None:
        vl = self.query_one(ViewList)
        key = event.option.id
        view = next((v for v in vl.views if v.key == key), None)
        if view is not None:
            self.show_view(view)
            self.query_one(TicketList).focus()

    def action_search(self) -> None:
        search = self.query_one("#search", Input)
        search.focus()

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            self.action_clear_search()
            return
        if self._load(text):
            self.search_text = text
            self._update_title()
            self.query_one(TicketList).focus()

    def action_clear_search(self) -> None:
        tl = self.query_one(TicketList)
        if tl.selected:
            tl.clear_selection()
            return
        search = self.query_one("#search", Input)
        if self.search_text or search.value or search.has_focus:
            search.value = ""
            self.search_text = ""
            if self.view is not None:
                self._load(self.view.query)
            tl.focus()

    def action_toggle_views(self) -> None:
        vl = self.query_one(ViewList)
        vl.display = not vl.display
        if vl.display:
            vl.focus()
        else:
            self.query_one(TicketList).focus()

    def action_focus_next_pane(self) -> None:
        vl = self.query_one(ViewList)
        tl = self.query_one(TicketList)
        if tl.has_focus and vl.display:
            vl.focus()
        else:
            tl.focus()

    def action_save_view(self) -> None:
        query = self.search_text or (self.view.query if self.view else "")

        def entered(name: str | None) -> None:
            if not name or not name.strip():
                return
            try:
                saved = views.save_view(self.desk, name, query)
            except ServiceError as exc:
                self.notify(str(exc), severity="error", markup=False)
                return
            self.notify(_("Saved the view {name}.").format(name=saved.name), markup=False)
            self.reload_views()

        self.app.push_screen(
            PromptScreen(_("Save this search as a view"), hint=inert(query, one_line=True)), entered
        )

    def reload_views(self) -> None:
        all_views = views.all_views(self.desk)
        self.query_one(ViewList).set_views(all_views)
        self._load_counts()

    @work(thread=True, exclusive=True, group="view-counts")
    def _load_counts(self) -> None:
        vl = self.query_one(ViewList)
        counts = views.counts(self.desk, list(vl.views))
        self.app.call_from_thread(self._show_counts, counts)

    def _show_counts(self, counts: dict[str, int | None]) -> None:
        self.query_one(ViewList).set_counts(counts)
        self.deskapp.part_loaded("counts")

    # -- the list ---------------------------------------------------------------------------

    @on(TicketList.Highlighted)
    def _highlighted(self, event: TicketList.Highlighted) -> None:
        self._load_preview(event.ticket_id)

    @on(TicketList.SelectionChanged)
    def _selection(self, event: TicketList.SelectionChanged) -> None:
        self._update_title()

    @work(thread=True, exclusive=True, group="preview")
    def _load_preview(self, ticket_id: int | None) -> None:
        self._preview_target = ticket_id
        time.sleep(PREVIEW_DELAY)  # the cursor often moves on at once: read only where it stops
        if self._preview_target != ticket_id:
            return
        doc: dict[str, Any] | None = None
        if ticket_id is not None:
            try:
                doc = show_ticket(self.desk, ticket_id)
            except ServiceError:
                doc = None
        self.app.call_from_thread(self._show_preview, doc)

    def _show_preview(self, doc: dict[str, Any] | None) -> None:
        found = self.query("#preview").results(Static)
        preview = next(found, None)
        if preview is None:  # the screen closed while the preview was loading
            return
        if doc is None:
            preview.update(Text(_("Nothing selected."), style="dim"))
        else:
            preview.update(preview_text(doc, self.deskapp.now()))
        self.deskapp.part_loaded("preview")

    @on(TicketList.Opened)
    def _opened(self, event: TicketList.Opened) -> None:
        self.deskapp.open_ticket(event.ticket_id)

    def action_reply(self) -> None:
        cur = self.query_one(TicketList).current_id
        if cur is not None:
            self.deskapp.open_ticket(cur, compose="reply")

    def action_note(self) -> None:
        cur = self.query_one(TicketList).current_id
        if cur is not None:
            self.deskapp.open_ticket(cur, compose="note")

    # -- triage and live updates ------------------------------------------------------------

    def triage_targets(self) -> list[int]:
        return self.query_one(TicketList).target_ids()

    def after_change(self) -> None:
        self.query_one(TicketList).clear_selection()
        self.action_refresh()

    def action_refresh(self) -> None:
        tl = self.query_one(TicketList)
        tl.reload()
        self._update_title()
        self._load_counts()
        self._load_preview(tl.current_id)

    def desk_changed(self) -> None:
        """The database changed (another agent, the runner): redraw what is shown."""
        if self.is_current:
            self.action_refresh()
        else:
            self._stale = True

    def on_screen_resume(self) -> None:
        if self._stale:
            self._stale = False
            self.action_refresh()
        self.update_status()

    def update_status(self) -> None:
        self.query_one(StatusBar).show(self.desk.agent, self.deskapp.desk_status)
