"""Small modal dialogs: a fuzzy picker, a one-line prompt, and a yes/no question."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from supportdesk.core.i18n import _
from supportdesk.core.text import inert
from supportdesk.ui.widgets.translate import translate_bindings

T = TypeVar("T")


@dataclass(frozen=True)
class PickItem(Generic[T]):
    label: str  # shown (inert) and searched
    value: T
    detail: str = ""  # shown dim after the label, also searched


def fuzzy_filter(items: Sequence[PickItem[Any]], query: str, limit: int = 100) -> list[int]:
    """Indexes of ``items`` that match ``query``, best first (all, in order, when empty)."""
    query = query.strip()
    if not query:
        return list(range(min(len(items), limit)))
    choices = [f"{it.label} {it.detail}" for it in items]
    from rapidfuzz import fuzz, process  # when a picker filters, not at the console's start

    hits = process.extract(
        query, choices, scorer=fuzz.WRatio, processor=str.lower, limit=limit, score_cutoff=50
    )
    return [index for _choice, _score, index in hits]


class PickerScreen(ModalScreen[T | None], Generic[T]):
    """Type to filter (fuzzy), arrows to move, Enter to choose, Esc to cancel."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="picker.cancel"),
        Binding("down", "move(1)", "Down", show=False, id="picker.down"),
        Binding("up", "move(-1)", "Up", show=False, id="picker.up"),
    ]

    def __init__(self, title: str, items: Sequence[PickItem[T]], *, placeholder: str = "") -> None:
        super().__init__()
        translate_bindings(self)
        self.title_text = title
        self.items = list(items)
        self.placeholder = placeholder or _("Type to filter…")
        self.shown: list[int] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Input(placeholder=self.placeholder, id="picker-input")
            yield OptionList(id="picker-options")

    def on_mount(self) -> None:
        self._refill("")

    def _refill(self, query: str) -> None:
        ol = self.query_one(OptionList)
        ol.clear_options()
        self.shown = fuzzy_filter(self.items, query)
        options = []
        for i in self.shown:
            it = self.items[i]
            prompt = Text(inert(it.label, one_line=True), no_wrap=True, overflow="ellipsis")
            if it.detail:
                prompt.append("  " + inert(it.detail, one_line=True), style="dim")
            options.append(Option(prompt, id=str(i)))
        ol.add_options(options)
        if options:
            ol.highlighted = 0

    @on(Input.Changed, "#picker-input")
    def _changed(self, event: Input.Changed) -> None:
        self._refill(event.value)

    @on(Input.Submitted, "#picker-input")
    def _submitted(self) -> None:
        ol = self.query_one(OptionList)
        if ol.highlighted is not None and self.shown:
            self.dismiss(self.items[self.shown[ol.highlighted]].value)

    @on(OptionList.OptionSelected, "#picker-options")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.items[int(event.option.id or 0)].value)

    def action_move(self, delta: int) -> None:
        ol = self.query_one(OptionList)
        if delta > 0:
            ol.action_cursor_down()
        else:
            ol.action_cursor_up()

    def action_cancel(self) -> None:
        self.dismiss(None)


class PromptScreen(ModalScreen[str | None]):
    """Ask for one line of text."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]

    def __init__(
        self, title: str, *, value: str = "", placeholder: str = "", hint: str = ""
    ) -> None:
        super().__init__()
        translate_bindings(self)
        self.title_text = title
        self.value = value
        self.placeholder = placeholder
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Input(value=self.value, placeholder=self.placeholder, id="prompt-input")
            if self.hint:
                yield Static(Text(self.hint, style="dim"), classes="dialog-hint")

    @on(Input.Submitted, "#prompt-input")
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question: y or Enter for yes, n or Esc for no."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        translate_bindings(self)
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self.question), classes="dialog-title")
            yield Static(Text(_("y = yes, n = no"), style="dim"))

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
