"""The queue: a virtual list drawn line by line, paging tickets from the database.

Only the rows on screen are rendered. Rows come ``views.PAGE`` at a time and are cached; the
first page is read with OFFSET so the first screen is drawn at once, while a thread worker reads
the view's ordered ticket ids, after which any page is a primary-key lookup (FACTS.md: a
line-API list stays instant at 100,000 tickets where DataTable freezes).

Long because: a virtual list (paging, drawing line by line, columns that fit the width,
selection) is one widget.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events, work
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from supportdesk.core.i18n import _
from supportdesk.core.terms import PRIORITIES, STATUSES
from supportdesk.core.text import inert
from supportdesk.desk.desk import BadInput, Desk
from supportdesk.tickets import views
from supportdesk.ui.widgets.format import (
    PRIORITY_STYLE,
    STATUS_STYLE,
    age,
    due,
    kind_mark,
    priority_label,
    status_label,
)
from supportdesk.ui.widgets.translate import translate_bindings

MAX_PAGES = 16


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    width: int  # 0 = takes the rest
    rank: int  # columns with the highest rank are dropped first on narrow screens


def _fit(default: int, title: str, labels: list[str] | None = None) -> int:
    """A column as wide as its title and its longest value in the console's language."""
    return max(default, cell_len(title), *(cell_len(x) for x in labels or [""]))


def columns() -> list[Column]:
    status, prio, age = _("Status"), _("Prio"), _("Age")
    return [
        Column("sel", "", 1, 0),
        Column("id", "#", 6, 0),
        Column("channel", _("Channel"), 9, 3),
        Column("customer", _("Customer"), 14, 1),
        Column("subject", _("Subject"), 0, 0),
        Column("status", status, _fit(7, status, [status_label(s) for s in STATUSES]), 1),
        Column("priority", prio, _fit(6, prio, [priority_label(p) for p in PRIORITIES]), 2),
        Column("assignee", _("Assignee"), 9, 4),
        Column("tags", _("Tags"), 12, 5),
        Column("age", age, _fit(4, age), 2),
        Column("due", _("SLA"), 5, 1),
    ]


MIN_SUBJECT = 20


def fit_columns(width: int) -> list[tuple[Column, int]]:
    """The columns that fit ``width`` cells, with their widths (subject takes the rest)."""
    cols = columns()
    while True:
        fixed = sum(c.width + 1 for c in cols if c.width)
        rest = width - fixed
        droppable = [c for c in cols if c.rank > 0]
        if rest >= MIN_SUBJECT or not droppable:
            break
        worst = max(droppable, key=lambda c: c.rank)
        cols.remove(worst)
    return [(c, c.width or max(rest, 4)) for c in cols]


class TicketList(ScrollView, can_focus=True):
    """The ticket list of the queue screen."""

    COMPONENT_CLASSES = {
        "ticket-list--header",
        "ticket-list--cursor",
        "ticket-list--selected",
        "ticket-list--empty",
    }
    DEFAULT_CSS = """
    TicketList { background: $surface; }
    TicketList > .ticket-list--header { text-style: bold; background: $panel; }
    TicketList > .ticket-list--cursor { background: $accent 40%; }
    TicketList:focus > .ticket-list--cursor { background: $accent; color: $text; }
    TicketList > .ticket-list--selected { background: $primary 30%; }
    TicketList > .ticket-list--empty { color: $text-muted; }
    """
    BINDINGS = [
        Binding("down,j", "cursor_down", "Down", show=False, id="list.down"),
        Binding("up,k", "cursor_up", "Up", show=False, id="list.up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="list.page_down"),
        Binding("pageup", "page_up", "Page up", show=False, id="list.page_up"),
        Binding("home,g", "first", "First", show=False, id="list.first"),
        Binding("end,G", "last", "Last", show=False, id="list.last"),
        Binding("enter", "open", "Open", id="list.open"),
        Binding(
            "space",
            "toggle_select",
            "Select",
            id="list.select",
            tooltip="Select the ticket and move down (several: bulk actions).",
        ),  # fmt: skip
        Binding(
            "plus",
            "select_query",
            "Select…",
            show=False,
            id="list.select_query",
            tooltip="Select the tickets of this view that match a query.",
        ),
        Binding(
            "asterisk",
            "select_all",
            "All",
            show=False,
            id="list.select_all",
            tooltip="Select every ticket in this view (again: none).",
        ),  # fmt: skip
    ]

    cursor: reactive[int] = reactive(0, always_update=True, repaint=False)

    class Highlighted(Message):
        """The cursor is on another ticket (or on none)."""

        def __init__(self, ticket_id: int | None) -> None:
            super().__init__()
            self.ticket_id = ticket_id

    class Opened(Message):
        def __init__(self, ticket_id: int) -> None:
            super().__init__()
            self.ticket_id = ticket_id

    class SelectionChanged(Message):
        def __init__(self, selected: frozenset[int]) -> None:
            super().__init__()
            self.selected = selected

    def __init__(
        self,
        desk: Desk,
        now: Callable[[], datetime],
        *,
        id: str | None = None,  # noqa: A002
    ) -> None:
        super().__init__(id=id)
        translate_bindings(self)
        self.desk = desk
        self.now = now
        self.view_query = ""
        self.total = 0
        self.selected: set[int] = set()
        self._ids: list[int] | None = None
        self._ids_pending = False
        self._pages: OrderedDict[int, list[views.QueueRow]] = OrderedDict()
        self._generation = 0
        self._last_highlight: int | None = -1
        self._cols: list[tuple[Column, int]] = []

    # -- data -------------------------------------------------------------------------------

    def load(self, query: str, *, keep: int | None = None) -> None:
        """Show the tickets matching ``query`` (QueryError on a bad one; the list is unchanged).

        ``keep``: a ticket id to keep the cursor on when it is still in the view.
        """
        total = views.total(self.desk, query)
        first = views.page(self.desk, query, 0)
        self._generation += 1
        self.view_query = query
        self.total = total
        self._ids = None
        self._ids_pending = False
        self._pages = OrderedDict([(0, first)])
        if keep is None:
            self.selected.clear()
        self.virtual_size = Size(self.size.width, total + 1)
        target = 0
        if keep is not None:
            target = next((i for i, r in enumerate(first) if r.id == keep), self.cursor)
        if total > views.PAGE and target >= views.PAGE:
            self._fetch_ids(self._generation, query)
        self.cursor = max(0, min(target, total - 1))
        self.refresh()

    def reload(self) -> None:
        """Read the current view again (live updates), keeping the cursor on its ticket."""
        current = self.current_id
        try:
            self.load(self.view_query, keep=current)
        except BadInput:
            return

    def _fetch_ids(self, generation: int, query: str) -> None:
        """Read the view's ordered ids in the background: only once the list goes past its
        first page, so a short look at the queue never pays for it."""
        self._ids_pending = True
        self._ids_worker(generation, query)

    @work(thread=True, exclusive=True, group="ticket-ids")
    def _ids_worker(self, generation: int, query: str) -> None:
        ids = views.ordered_ids(self.desk, query)
        self.app.call_from_thread(self._set_ids, generation, ids)

    def _set_ids(self, generation: int, ids: list[int]) -> None:
        if generation != self._generation:
            return
        self._ids_pending = False
        self._ids = ids
        if len(ids) != self.total:
            self.total = len(ids)
            self._pages.clear()
            self.virtual_size = Size(self.size.width, self.total + 1)
            self.cursor = max(0, min(self.cursor, self.total - 1))
            self.refresh()

    def _page(self, number: int) -> list[views.QueueRow]:
        rows = self._pages.get(number)
        if rows is not None:
            self._pages.move_to_end(number)
            return rows
        start = number * views.PAGE
        if self._ids is None and not self._ids_pending:
            self._fetch_ids(self._generation, self.view_query)  # later pages go by id
        if self._ids is not None:
            rows = views.rows_by_ids(self.desk, self._ids[start : start + views.PAGE])
        else:
            rows = views.page(self.desk, self.view_query, start)
        self._pages[number] = rows
        while len(self._pages) > MAX_PAGES:
            self._pages.popitem(last=False)
        return rows

    def row_at(self, index: int) -> views.QueueRow | None:
        if index < 0 or index >= self.total:
            return None
        rows = self._page(index // views.PAGE)
        off = index % views.PAGE
        return rows[off] if off < len(rows) else None

    @property
    def current_id(self) -> int | None:
        row = self.row_at(self.cursor)
        return row.id if row else None

    def target_ids(self) -> list[int]:
        """The tickets an action applies to: the selection, else the one under the cursor."""
        if self.selected:
            return sorted(self.selected)
        cur = self.current_id
        return [cur] if cur is not None else []

    def clear_selection(self) -> None:
        if self.selected:
            self.selected.clear()
            self.post_message(self.SelectionChanged(frozenset()))
            self.refresh()

    # -- cursor -----------------------------------------------------------------------------

    @property
    def page_height(self) -> int:
        return max(self.scrollable_content_region.height - 1, 1)

    def watch_cursor(self, old: int, new: int) -> None:
        self._scroll_to_cursor()
        self.refresh_line(old - int(self.scroll_offset.y) + 1)
        self.refresh_line(new - int(self.scroll_offset.y) + 1)
        cur = self.current_id
        if cur != self._last_highlight:
            self._last_highlight = cur
            self.post_message(self.Highlighted(cur))

    def _scroll_to_cursor(self) -> None:
        top = int(self.scroll_offset.y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + self.page_height:
            self.scroll_to(y=self.cursor - self.page_height + 1, animate=False, immediate=True)

    def action_cursor_down(self) -> None:
        if self.cursor < self.total - 1:
            self.cursor += 1

    def action_cursor_up(self) -> None:
        if self.cursor > 0:
            self.cursor -= 1

    def action_page_down(self) -> None:
        self.cursor = min(self.cursor + self.page_height, max(self.total - 1, 0))

    def action_page_up(self) -> None:
        self.cursor = max(self.cursor - self.page_height, 0)

    def action_first(self) -> None:
        self.cursor = 0

    def action_last(self) -> None:
        self.cursor = max(self.total - 1, 0)

    def action_open(self) -> None:
        cur = self.current_id
        if cur is not None:
            self.post_message(self.Opened(cur))

    def action_select_all(self) -> None:
        """Every ticket of the view (all of them, not only the loaded pages); again: none."""
        ids = views.ordered_ids(self.desk, self.view_query)
        if self.selected and set(ids) <= self.selected:
            self.selected.clear()
        else:
            self.selected = set(ids)
        self.post_message(self.SelectionChanged(frozenset(self.selected)))
        self.refresh()

    def action_select_query(self) -> None:
        from supportdesk.ui.screens.dialogs import PromptScreen

        def entered(query: str | None) -> None:
            if query is None or not query.strip():
                return
            from supportdesk.search.query import QueryError

            try:
                ids = views.ordered_ids(self.desk, f"{self.view_query} {query}".strip())
            except QueryError as exc:
                self.notify(str(exc), severity="error", markup=False)
                return
            self.select_ids(sorted(self.selected | set(ids)))
            self.notify(_("Selected {n} ticket(s) matching {q}.").format(n=len(ids), q=query),
                        markup=False)  # fmt: skip

        self.app.push_screen(
            PromptScreen(_("Select the tickets matching"), placeholder="tag:billing status:new"),
            entered,
        )

    def select_ids(self, ids: list[int]) -> None:
        self.selected = set(ids)
        self.post_message(self.SelectionChanged(frozenset(self.selected)))
        self.refresh()

    def action_toggle_select(self) -> None:
        cur = self.current_id
        if cur is None:
            return
        self.selected.symmetric_difference_update({cur})
        self.post_message(self.SelectionChanged(frozenset(self.selected)))
        self.refresh_line(self.cursor - int(self.scroll_offset.y) + 1)
        self.action_cursor_down()

    def on_click(self, event: events.Click) -> None:
        if event.y < 1:
            return
        index = int(self.scroll_offset.y) + event.y - 1
        if 0 <= index < self.total:
            self.cursor = index
            if event.chain >= 2:
                self.action_open()

    # -- drawing ----------------------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        self._cols = []
        self.virtual_size = Size(event.size.width, self.total + 1)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if not self._cols or sum(w + 1 for _c, w in self._cols) - 1 != width:
            self._cols = fit_columns(width)
        if y == 0:
            style = self.get_component_rich_style("ticket-list--header")
            return self._strip([(c.title, Style()) for c, _w in self._cols], style, width)
        index = int(self.scroll_offset.y) + y - 1
        row = self.row_at(index)
        if row is None:
            if self.total == 0 and y == 1:
                style = self.get_component_rich_style("ticket-list--empty")
                return Strip([Segment(set_cell_size(" " + _("No tickets here."), width), style)])
            return Strip.blank(width, self.rich_style)
        base = self.rich_style
        if index == self.cursor:
            base = base + self.get_component_rich_style("ticket-list--cursor")
        elif row.id in self.selected:
            base = base + self.get_component_rich_style("ticket-list--selected")
        return self._strip(self._cells(row), base, width)

    def _cells(self, row: views.QueueRow) -> list[tuple[str, Style]]:
        now = self.now()
        out: list[tuple[str, Style]] = []
        for col, _w in self._cols:
            k = col.key
            if k == "sel":
                out.append(("●" if row.id in self.selected else " ", Style(color="bright_magenta")))
            elif k == "id":
                out.append((str(row.id), Style(dim=True)))
            elif k == "channel":
                out.append((f"{kind_mark(row.kind)} {inert(row.channel, one_line=True)}", Style()))
            elif k == "customer":
                out.append((inert(row.customer, one_line=True), Style()))
            elif k == "subject":
                snooze = "💤 " if row.snoozed_until and row.snoozed_until > now else ""
                out.append((snooze + inert(row.subject, one_line=True), Style()))
            elif k == "status":
                out.append((status_label(row.status), STATUS_STYLE.get(row.status, Style())))
            elif k == "priority":
                out.append(
                    (priority_label(row.priority), PRIORITY_STYLE.get(row.priority, Style()))
                )
            elif k == "assignee":
                out.append((inert(row.assignee, one_line=True) or "—", Style(dim=not row.assignee)))
            elif k == "tags":
                out.append((inert(" ".join(row.tags), one_line=True), Style(color="cyan")))
            elif k == "age":
                out.append((age(row.created_at, now), Style(dim=True)))
            elif k == "due":
                out.append(due(row.due_at, now, row.sla_breached))
        return out

    def _strip(self, cells: list[tuple[str, Style]], base: Style, width: int) -> Strip:
        segments: list[Segment] = []
        for (col, w), (text, style) in zip(self._cols, cells, strict=True):
            if cell_len(text) > w:
                text = set_cell_size(text, max(w - 1, 0)) + "…" if w > 1 else set_cell_size(text, w)
            cell = set_cell_size(text, w)
            if col.key in ("id", "age", "due"):
                cell = " " * (w - cell_len(text)) + text if cell_len(text) <= w else cell
            segments.append(Segment(cell, base + style))
            segments.append(Segment(" ", base))
        strip = Strip(segments[:-1] if segments else [])
        return strip.adjust_cell_length(width, base)
