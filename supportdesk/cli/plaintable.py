"""A table as rich prints ``output.print_table``'s (no box, no edge padding, one line a cell,
ellipsis) when rich would write no escape sequence: stdout not a terminal (a pipe, a file).
Then the bytes are plain text and this module makes the same ones without importing
``rich.console`` and ``rich.table`` (about 60 ms CPU of a 100-row `tickets list`); on a terminal,
or whenever a case is not certainly the same, the caller takes rich (``None`` here).

Widths come from rich's own ``rich.cells`` (wide characters, graphemes), and the column widths
follow ``rich.table.Table._calculate_column_widths`` for columns with ``no_wrap`` and no fixed
width. tests/tickets/test_plaintable.py compares the two byte for byte over many widths and
texts. The cells are ``inert`` text already: no control character reaches the output either way.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

_RICH_STRIPS = frozenset("\x07\x08\x0b\x0c\x0d\t\n")  # rich.Text would change these: rich's


def plain_width() -> int | None:
    """The width ``rich.console.Console`` takes when it writes plain text to stdout (not a
    terminal, as rich decides it), else None (rich's to print)."""
    mode = _mode()
    return mode[1] if mode is not None and not mode[0] else None


def terminal_width() -> int | None:
    """The width of the terminal rich writes escape sequences to (a colour system, not a
    "dumb" one), else None."""
    mode = _mode()
    return mode[1] if mode is not None and mode[0] else None


def _mode() -> tuple[bool, int] | None:
    """(whether rich writes escape sequences, its width); None when rich must decide."""
    env = os.environ
    terminal = False
    tty = env.get("TTY_COMPATIBLE", "")
    if tty == "1":
        terminal = True
    elif tty != "0":
        force = env.get("FORCE_COLOR")
        if force is not None:
            terminal = force != ""
        else:
            isatty = getattr(sys.stdout, "isatty", None)
            try:
                terminal = bool(isatty is not None and isatty())
            except ValueError:
                pass  # rich: not a terminal
    if "ipykernel" in sys.modules or getattr(sys.stdin, "__module__", "").startswith("idlelib"):
        return None
    if terminal:
        term = env.get("TERM", "")
        if term.lower() in ("dumb", "unknown") or term.strip().lower() in ("dumb", "unknown"):
            return None  # no colour system, an 80-wide dumb terminal: rich's
        if sys.platform == "win32":
            return None
    columns = env.get("COLUMNS")
    if columns is not None and columns.isdigit():
        width = int(columns)
    else:
        width = 0
        for fd in (0, 1, 2):
            try:
                width = os.get_terminal_size(fd)[0]
            except (AttributeError, ValueError, OSError):
                continue
            break
        width = width or 80
    return (terminal, width) if width >= 1 else None


def _measure(text: str, cell_len: object) -> tuple[int, int]:
    """``rich.text.Text.__rich_measure__``."""
    cl = cell_len  # type: ignore[assignment]
    lines = text.splitlines()
    most = max(cl(line) for line in lines) if lines else 0  # type: ignore[operator]
    words = text.split()
    least = max(cl(word) for word in words) if words else most  # type: ignore[operator]
    return least, most


def _norm(least: int, most: int, cap: int) -> tuple[int, int]:
    """``Measurement(least, most).normalize().with_maximum(cap)``."""
    least = min(max(0, least), most)
    least, most = max(0, least), max(0, max(least, most))
    return min(least, cap), min(most, cap)


def _cell_range(m: tuple[int, int], pad: int, cap: int) -> tuple[int, int]:
    """``Measurement.get`` of a table cell (a ``Padding`` of ``pad`` around a Text measured
    ``m``) within ``cap`` cells."""
    if cap < 1:
        return 0, 0
    if cap - pad < 1:
        least, most = cap, cap
    else:
        least, most = _norm(*m, cap)
        if most < 1:
            least, most = 0, 0
        else:
            least, most = _norm(least, most, most)
        least, most = min(least + pad, cap), min(most + pad, cap)
    least, most = _norm(least, most, cap)
    if most < 1:
        return 0, 0
    return _norm(least, most, most)


def _column(
    measured: list[tuple[int, int]], pad: int, cap: int, low: int | None, high: int | None
) -> tuple[int, int]:
    """``Table._measure_column`` of a column without a fixed width."""
    if cap < 1:
        return 0, 0
    ranges = [_cell_range(m, pad, cap) for m in measured]
    least = max(r[0] for r in ranges) if ranges else 1
    most = max(r[1] for r in ranges) if ranges else cap
    least, most = min(least, cap), min(most, cap)
    if low is not None:
        w = max(0, low + pad)
        least, most = max(least, w), max(most, w)
    if high is not None:
        w = high + pad
        least, most = min(least, w), min(most, w)
    return least, most


def _ratio_reduce(total: int, maximums: list[int], values: list[int]) -> list[int]:
    """``rich._ratio.ratio_reduce(total, [1] * n, maximums, values)``."""
    ratios = [1 if m else 0 for m in maximums]
    total_ratio = sum(ratios)
    if not total_ratio:
        return values[:]
    remaining = total
    out: list[int] = []
    for ratio, maximum, value in zip(ratios, maximums, values, strict=True):
        if ratio and total_ratio > 0:
            given = min(maximum, round(ratio * remaining / total_ratio))
            out.append(value - given)
            remaining -= given
            total_ratio -= ratio
        else:
            out.append(value)
    return out


def plain_table(
    titles: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    width: int,
    min_width: Sequence[int | None],
    max_width: Sequence[int | None],
    bold_header: bool = False,
) -> str | None:
    """The text rich prints for ``output.print_table``'s table (header and rows, each cell one
    line of inert text) ``width`` cells wide without a terminal (``bold_header``: on a terminal,
    where only the header has a style); None when it cannot be sure."""
    from rich.cells import cell_len, set_cell_size

    n = len(titles)
    if not rows or n == 0 or width < 1:
        return None
    table = [list(titles), *(list(r) for r in rows)]
    for line in table:
        if len(line) != n:
            return None
        for cell in line:
            if not _RICH_STRIPS.isdisjoint(cell):
                return None
    pads = [(0 if i == 0 else 1) + (0 if i == n - 1 else 1) for i in range(n)]
    measured = [[_measure(line[i], cell_len) for line in table] for i in range(n)]
    ranges = [_column(measured[i], pads[i], width, min_width[i], max_width[i]) for i in range(n)]
    widths = [r[1] or 1 for r in ranges]
    if sum(widths) > width:
        widths = _ratio_reduce(sum(widths) - width, widths, widths)
        ranges = [
            _column(measured[i], pads[i], widths[i], min_width[i], max_width[i]) for i in range(n)
        ]
        widths = [r[1] or 0 for r in ranges]
    crop = sum(widths) > width  # rich lays the table out wider, then crops each line
    out: list[str] = []
    for row, line in enumerate(table):
        parts: list[str] = []
        for i, text in enumerate(line):
            left = 0 if i == 0 else 1
            right = 0 if i == n - 1 else 1
            room = widths[i] - left - right
            if room < 1:
                return None
            if cell_len(text) > room:
                text = set_cell_size(text, room - 1) + "…"
            size = cell_len(text)
            if size > room:
                return None
            # rich's segments: the left padding, the text with its padding, the right padding
            parts += [" " * left, text + " " * (room - size), " " * right]
        if crop:
            parts = _crop(parts, width, cell_len, set_cell_size)
        if bold_header and row == 0:
            out.append("".join(f"\x1b[1m{p}\x1b[0m" for p in parts if p))
        else:
            out.append("".join(parts))
    return "\n".join(out) + "\n"


def _crop(parts: list[str], width: int, cell_len: Any, set_cell_size: Any) -> list[str]:
    """``Segment.adjust_line_length(line, width, pad=False)`` over a line's segments."""
    if sum(cell_len(p) for p in parts) <= width:
        return parts
    kept: list[str] = []
    used = 0
    for part in parts:
        size = cell_len(part)
        if used + size < width:
            kept.append(part)
            used += size
        else:
            kept.append(set_cell_size(part, width - used))
            break
    return kept


def plain_lines(lines: Sequence[str], *, ellipsis: bool = False) -> str | None:
    """What rich's console prints for ``lines`` (each a Text of one line, styles aside) when
    stdout is not a terminal: the lines as they are when each fits the width; cut with "…"
    when ``ellipsis`` (``no_wrap``, ``overflow="ellipsis"``). None when rich would do more (wrap
    a line, drop a control character, expand a tab) or writes to a terminal: rich's to print."""
    width = plain_width()
    if width is None:
        return None
    cell_len: Any = None
    set_cell_size: Any = None
    out: list[str] = []
    for line in lines:
        if not _RICH_STRIPS.isdisjoint(line):
            return None
        if line.isascii() and line.isprintable() and len(line) <= width:
            out.append(line)
            continue
        if cell_len is None:
            from rich.cells import cell_len, set_cell_size
        size = cell_len(line)
        if ellipsis:
            out.append(set_cell_size(line, width - 1) + "…" if size > width else line)
        elif size <= width and len(line) <= width:
            out.append(line)
        else:
            out += _wrap(line, width, set_cell_size)
    return "".join(line + "\n" for line in out)


def _wrap(line: str, width: int, set_cell_size: Any) -> list[str]:
    """``rich.text.Text.wrap`` of one line (justify "default", overflow "fold")."""
    import re

    from rich._wrap import divide_line

    offsets = divide_line(line, width, fold=True)
    bounds = [0, *offsets, len(line)]
    pieces = [line[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    out = []
    for piece in pieces:
        if len(piece) > width:  # Text.rstrip_end
            space = re.search(r"\s+$", piece)
            if space is not None:
                piece = piece[: len(piece) - min(len(space.group(0)), len(piece) - width)]
        out.append(set_cell_size(piece, width) if _cells(piece) > width else piece)
    return out


def _cells(text: str) -> int:
    from rich.cells import cell_len

    return int(cell_len(text))
