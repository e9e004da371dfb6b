"""Output for people and for scripts.

Human output never interprets markup found in data, and replaces control characters and
escape sequences with visible placeholders, so a subject like ``[bold]x[/bold]`` prints exactly
so and an escape sequence in a mail never reaches the terminal.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, NoReturn

from supportdesk.core.text import inert

_TZ: Any = None
_TZ_NAME: str | None = None  # set, not yet looked up: JSON and CSV never need the zone
_UNSET = object()


def set_timezone(name: str | None) -> None:
    """Human output shows times in the desk's time zone (JSON and CSV keep ISO 8601). The zone
    is looked up when a time is first shown (``zoneinfo`` is a few ms to import)."""
    global _TZ, _TZ_NAME
    _TZ, _TZ_NAME = _UNSET, name


def _zone() -> Any:
    """The desk's zone for human times; None (the machine's local time) when unset or unknown."""
    global _TZ
    if _TZ is _UNSET:
        from zoneinfo import ZoneInfo

        try:
            _TZ = ZoneInfo(_TZ_NAME) if _TZ_NAME else None
        except (ValueError, KeyError, OSError):
            _TZ = None
    return _TZ


def human_time(value: Any) -> str:
    """An ISO 8601 text or a datetime as a short local time: ``2026-11-20 15:04`` (no seconds,
    no offset: the desk's zone); "" for None; any other text unchanged."""
    if value is None or value == "":
        return ""
    when = value
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(when, datetime):
        return str(value)
    if when.tzinfo is not None:
        zone = _zone()
        when = when.astimezone(zone) if zone is not None else when.astimezone()
    return when.strftime("%Y-%m-%d %H:%M")


def limit_hint(shown: int, limit: int, more: str) -> None:
    """On stderr, when a list was cut at ``limit``: how to see the rest."""
    if limit and shown >= limit:
        sys.stderr.write(f"Showing the first {shown}; {more}\n")


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, markup=False, highlight=False, emoji=False, soft_wrap=False)


def say(line: str) -> None:
    """One plain line on stdout (a summary of numbers: nothing for rich to do, so no rich)."""
    sys.stdout.write(inert(line, one_line=True) + "\n")


def fail(message: str, code: int = 1) -> NoReturn:
    """One clear sentence on stderr, then exit with ``code``."""
    msg = inert(message, one_line=True).strip()
    if msg and not msg.endswith((".", "!", "?")):
        msg += "."
    sys.stderr.write(f"supportdesk: {msg}\n")
    import typer  # here: the quick path prints through this module without loading typer

    raise typer.Exit(code)


def _json_default(o: Any) -> Any:
    if isinstance(o, datetime):
        return o.isoformat()
    return str(o)


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2, default=_json_default))
    sys.stdout.write("\n")


def print_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> None:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_csv_cell(r.get(c)) for c in columns])
    text = buf.getvalue()
    if sys.stdout.isatty():
        # on a terminal CSV is human output too: no escape sequence of a customer reaches it
        # (to a file or a pipe the bytes stay exact)
        text = "\n".join(inert(line) for line in text.split("\n"))
    sys.stdout.write(text)


def _csv_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, list):
        return ",".join(str(x) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, ensure_ascii=False)
    s = str(v)
    if s[:1] in ("=", "+", "-", "@") and not s[1:2].isdigit():
        s = "'" + s  # keep spreadsheets from running formulas found in customer text
    return s


def print_table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[tuple[str, str]],
    *,
    empty: str = "Nothing to show.",
    formatters: dict[str, Callable[[Any], str]] | None = None,
    max_width: dict[str, int] | None = None,
    min_width: dict[str, int] | None = None,
) -> None:
    fm = formatters or {}
    cells = [
        [
            inert(
                fm[key](v)
                if key in fm
                else human_time(v)
                if key.endswith("_at") or isinstance(v, datetime)
                else ("" if v is None else ", ".join(v) if isinstance(v, list) else str(v)),
                one_line=True,
            )
            for key, _title in columns
            for v in (r.get(key),)
        ]
        for r in rows
    ]
    lows = [(min_width or {}).get(key, min(len(title), 8)) for key, title in columns]
    highs = [(max_width or {}).get(key) for key, _title in columns]
    if cells:
        from supportdesk.cli.plaintable import plain_table, plain_width, terminal_width

        # the same bytes as rich without loading rich's tables: plain text where stdout is
        # not a terminal, a bold header on one
        width, bold = plain_width(), False
        if width is None:
            width, bold = terminal_width(), True
        text = None
        if width is not None:
            titles = [title for _key, title in columns]
            text = plain_table(
                titles, cells, width=width, min_width=lows, max_width=highs, bold_header=bold
            )
        if text is not None:
            sys.stdout.write(text)
            return
    from rich.table import Table
    from rich.text import Text

    con = console()
    if not rows:
        con.print(Text(empty))
        return
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for (_key, title), low, high in zip(columns, lows, highs, strict=True):
        table.add_column(title, overflow="ellipsis", no_wrap=True, max_width=high, min_width=low)
    for line in cells:
        table.add_row(*(Text(c) for c in line))
    con.print(table)


def console_width() -> int:
    """The width tables are laid out for: rich's console's, found without loading rich when
    stdout is not a terminal."""
    from supportdesk.cli.plaintable import plain_width, terminal_width

    width = plain_width()
    if width is None:
        width = terminal_width()
    return width if width is not None else console().width


def quick_exit(code: int) -> None:
    """Exit without tearing the interpreter down object by object (a tenth of a second after a
    big import, for nothing): exit handlers run and the output is flushed, then the process
    ends."""
    import atexit
    import os

    if "logging" in sys.modules:  # nothing to shut down when nothing logged
        sys.modules["logging"].shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed pipe: nothing more can be said
    os._exit(code)
