"""Customer text made safe for a terminal, shared by the console and the CLI.

Data from mail and chats is never interpreted: control characters and escape sequences (an
OSC 52 clipboard write, colour codes) are replaced with visible placeholders, and bidi
overrides are shown rather than obeyed. Markup is not touched here: callers put the result in
``rich.text.Text`` / ``textual.content.Content`` objects, which never parse markup.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

_CONTROL: dict[int, str] = {i: f"\\x{i:02x}" for i in range(0x20) if chr(i) not in "\n\t"}
_CONTROL[0x1B] = "␛"
_CONTROL[0x7F] = "\\x7f"
for _i in range(0x80, 0xA0):
    _CONTROL[_i] = f"\\x{_i:02x}"
for _c in (
    "\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
    "\u2066", "\u2067", "\u2068", "\u2069",
):  # fmt: skip
    _CONTROL[ord(_c)] = f"\\u{ord(_c):04x}"  # bidi overrides: shown, not obeyed
_ONE_LINE = dict(_CONTROL)
_ONE_LINE[0x0A] = "⏎"
_ONE_LINE[0x09] = " "
_ONE_LINE[0x0D] = ""


def inert(text: Any, *, one_line: bool = False) -> str:
    """Text safe for a terminal: control characters shown as placeholders.

    ``one_line`` also folds newlines to ``⏎`` and tabs to a space, for table cells.
    """
    s = "" if text is None else str(text)
    s = s.replace("\r\n", "\n")
    return s.translate(_ONE_LINE if one_line else _CONTROL)


def iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None
