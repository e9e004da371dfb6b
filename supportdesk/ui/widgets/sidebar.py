"""The sidebar of views: built-in views, one per channel, SLA at risk and saved searches."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from supportdesk.core.i18n import _
from supportdesk.core.text import inert
from supportdesk.tickets.views import View


def view_title(view: View) -> str:
    names = {
        "unassigned": _("Unassigned"), "mine": _("Mine"), "open": _("All open"),
        "pending": _("Pending"), "solved": _("Solved"), "at-risk": _("SLA at risk"),
    }  # fmt: skip
    if view.key in names:
        return names[view.key]
    if view.key.startswith("channel:"):
        return "  " + inert(view.name, one_line=True)
    return "★ " + inert(view.name, one_line=True)


class ViewList(OptionList):
    """The views; choosing one shows it in the ticket list."""

    DEFAULT_CSS = """
    ViewList { width: 26; border: none; padding: 0; }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.views: list[View] = []
        self.counts: dict[str, int | None] = {}
        self._padded_for = 0  # the width the prompts were padded for

    def set_views(self, views: list[View], counts: dict[str, int | None] | None = None) -> None:
        keep = self.highlighted
        self.views = views
        if counts is not None:
            self.counts = counts
        self.clear_options()
        self.add_options([self._option(v) for v in views])
        if views:
            self.highlighted = min(keep or 0, len(views) - 1)

    def set_counts(self, counts: dict[str, int | None]) -> None:
        self.counts = counts
        for i, v in enumerate(self.views):
            self.replace_option_prompt_at_index(i, self._prompt(v))
        self.call_after_refresh(self._repad)

    def _width(self) -> int:
        return max(self.scrollable_content_region.width, 24) - 2

    def on_resize(self) -> None:
        self._repad()

    def _repad(self) -> None:
        # the counts are right-aligned to the width: counts that arrived before the layout
        # settled (a fast count; a scrollbar's gutter) were padded for another width
        if self.views and self._width() != self._padded_for:
            self.set_counts(self.counts)

    def _prompt(self, view: View) -> Text:
        width = self._padded_for = self._width()
        title = view_title(view)
        n = self.counts.get(view.key)
        count = "" if view.key not in self.counts else ("?" if n is None else str(n))
        text = Text(title[: max(width - len(count) - 1, 4)], no_wrap=True, overflow="ellipsis")
        pad = max(width - text.cell_len - len(count), 1)
        text.append(" " * pad)
        text.append(count, style="bold" if n else "dim")
        return text

    def _option(self, view: View) -> Option:
        return Option(self._prompt(view), id=view.key)

    def index_of(self, key: str) -> int | None:
        for i, v in enumerate(self.views):
            if v.key == key:
                return i
        return None
