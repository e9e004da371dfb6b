"""A one-line list of the keys that work here: a light Footer (one Static, no child widgets),
so opening a screen stays fast. Clicking a key runs its action."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.dom import DOMNode
from textual.message_pump import MessagePump
from textual.screen import Screen
from textual.widgets import Static


class KeyBar(Static):
    DEFAULT_CSS = """
    KeyBar { height: 1; background: $panel; }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self._spans: list[tuple[int, int, DOMNode, str]] = []

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._bindings_changed(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[object]) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        spans: list[tuple[int, int, DOMNode, str]] = []
        seen: set[str] = set()
        for node, binding, enabled, _tooltip in screen.active_bindings.values():
            ident = binding.id or binding.action
            if not binding.show or ident in seen:
                continue
            seen.add(ident)
            start = text.cell_len
            text.append(f" {self.app.get_key_display(binding)} ", style="bold reverse")
            text.append(" " + binding.description + " ", style="" if enabled else "dim")
            spans.append((start, text.cell_len, node, binding.action))
        self._spans = spans
        self.update(text)

    async def on_click(self, event: events.Click) -> None:
        for start, end, node, action in self._spans:
            if start <= event.x < end:
                if isinstance(node, MessagePump):
                    await self.app.run_action(action, node)  # type: ignore[arg-type]
                return
