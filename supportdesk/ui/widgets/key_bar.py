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
        self._screen_bindings: Screen[object] | None = None

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._bindings_changed(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[object]) -> None:
        self._screen_bindings = screen
        self._render_keys()

    def on_resize(self) -> None:
        if self._screen_bindings is not None:
            self._render_keys()

    def _render_keys(self) -> None:
        """The keys in order, cut to the width, but "? Help" always kept at the right end."""
        screen = self._screen_bindings
        if screen is None:
            return
        items: list[tuple[str, str, bool, DOMNode, str, bool]] = []
        seen: set[str] = set()
        for node, binding, enabled, _tooltip in screen.active_bindings.values():
            ident = binding.id or binding.action
            if not binding.show or ident in seen:
                continue
            seen.add(ident)
            items.append((self.app.get_key_display(binding), binding.description, enabled,
                          node, binding.action, ident == "app.help"))  # fmt: skip
        helps = [i for i in items if i[5]]
        rest = [i for i in items if not i[5]]
        width = self.size.width or self.app.size.width
        reserve = sum(len(k) + len(d) + 4 for k, d, *_ in helps)
        text = Text(no_wrap=True, overflow="ellipsis")
        spans: list[tuple[int, int, DOMNode, str]] = []
        for key, desc, enabled, node, action, _h in rest:
            if text.cell_len + len(key) + len(desc) + 4 > width - reserve:
                break
            start = text.cell_len
            text.append(f" {key} ", style="bold reverse")
            text.append(" " + desc + " ", style="" if enabled else "dim")
            spans.append((start, text.cell_len, node, action))
        if helps:
            pad = max(0, width - reserve - text.cell_len)
            text.append(" " * pad)
            for key, desc, enabled, node, action, _h in helps:
                start = text.cell_len
                text.append(f" {key} ", style="bold reverse")
                text.append(" " + desc + " ", style="" if enabled else "dim")
                spans.append((start, text.cell_len, node, action))
        self._spans = spans
        self.update(text)

    async def on_click(self, event: events.Click) -> None:
        for start, end, node, action in self._spans:
            if start <= event.x < end:
                if isinstance(node, MessagePump):
                    await self.app.run_action(action, node)  # type: ignore[arg-type]
                return
