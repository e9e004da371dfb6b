"""`?`: every key binding of the console, with the keys in effect after the keymap."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingsMap
from textual.containers import Vertical, VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from supportdesk.core.i18n import _
from supportdesk.ui.widgets.translate import translate_bindings


def binding_table(app: App[Any], sections: list[tuple[str, type[DOMNode]]]) -> Table:
    """A table of (section, keys, what) for every binding with an id, keymap applied."""
    keymap: dict[str, str] = dict(app._keymap)
    table = Table(box=None, show_header=False, pad_edge=False, expand=True)
    table.add_column("keys", style="bold cyan", no_wrap=True, width=16)
    table.add_column("what", ratio=1)
    table.add_column("id", style="dim", no_wrap=True)
    for title, cls in sections:
        merged = cls._merged_bindings or BindingsMap()
        seen: set[str] = set()
        rows: list[Binding] = []
        for _key, b in merged:
            ident = b.id or f"{b.key}:{b.action}"
            if ident in seen or b.system:
                continue
            seen.add(ident)
            rows.append(b)
        if not rows:
            continue
        table.add_row(Text(title, style="bold underline"), "", "")
        for b in rows:
            keys = keymap.get(b.id or "", b.key)
            shown = ", ".join(app.get_key_display(Binding(k.strip(), "")) for k in keys.split(","))
            what = _(b.tooltip) if b.tooltip else _(b.description) or b.action
            table.add_row(Text(shown), Text(what), Text(b.id or ""))
        table.add_row("", "", "")
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close", id="help.close")]

    def __init__(self, sections: list[tuple[str, type[DOMNode]]]) -> None:
        super().__init__()
        translate_bindings(self)
        self.sections = sections

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(_("Keys"), classes="dialog-title")
            with VerticalScroll():
                yield Static(binding_table(self.app, self.sections), id="help-table")
            yield Static(
                Text(
                    _(
                        'Remap any key in config.toml under [desk.keymap], e.g. "triage.assign" = "A".'
                    ),
                    style="dim",
                )  # fmt: skip
            )

    def action_close(self) -> None:
        self.dismiss(None)
