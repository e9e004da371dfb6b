"""The dashboard: the figures of ``supportdesk report`` as bar and line charts.

Charts are drawn with Unicode block and braille characters, so they work in any terminal
and over SSH, and fit 80x24 (the screen scrolls when it needs more room). All data comes from
``reports.metrics``; it is computed in a worker thread so the console never freezes.

Keys: ``escape``/``q`` back, ``r`` refresh, ``1`` last 7 days, ``2`` last 30 days,
``3`` last 90 days.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from supportdesk.core.config import ConfigError
from supportdesk.core.errors import StoreError
from supportdesk.core.i18n import _
from supportdesk.core.text import inert
from supportdesk.desk.desk import Desk, ServiceError
from supportdesk.reports import metrics
from supportdesk.ui.widgets.translate import translate_bindings

EIGHTHS = " ▏▎▍▌▋▊▉█"
LEVELS = "▁▂▃▄▅▆▇█"
# braille dot bits by (column, row) inside a 2x4 cell
_DOTS = {(0, 0): 0x01, (0, 1): 0x02, (0, 2): 0x04, (0, 3): 0x40,
         (1, 0): 0x08, (1, 1): 0x10, (1, 2): 0x20, (1, 3): 0x80}  # fmt: skip


def hbar(value: float, top: float, width: int) -> str:
    """A horizontal bar of ``width`` cells for ``value`` out of ``top``, in eighths of a cell."""
    if width <= 0 or top <= 0 or value <= 0:
        return ""
    eighths = round(min(value / top, 1.0) * width * 8)
    eighths = max(eighths, 1)
    return "█" * (eighths // 8) + (EIGHTHS[eighths % 8] if eighths % 8 else "")


def bar_lines(items: list[tuple[str, float]], width: int) -> list[str]:
    """One line per item: label, bar, value; bars scaled to the largest value."""
    if not items:
        return []
    label_w = min(max(len(label) for label, _v in items), 14)
    values = [_num(v) for _l, v in items]
    value_w = max(len(v) for v in values)
    bar_w = max(width - label_w - value_w - 2, 1)
    top = max((v for _l, v in items), default=0)
    out = []
    for (label, v), shown in zip(items, values, strict=True):
        name = label if len(label) <= label_w else label[: label_w - 1] + "…"
        out.append(f"{name:<{label_w}} {hbar(v, top, bar_w):<{bar_w}} {shown:>{value_w}}")
    return out


def sparkline(values: list[float]) -> str:
    """One character per value: blank for zero, ▁ to █ for the rest."""
    top = max(values, default=0)
    if top <= 0:
        return " " * len(values)
    return "".join(
        " " if v <= 0 else LEVELS[min(len(LEVELS) - 1, math.ceil(v / top * len(LEVELS)) - 1)]
        for v in values
    )


def line_chart(values: list[float], width: int, height: int) -> list[str]:
    """A line through ``values`` drawn with braille dots: ``height`` rows of ``width`` cells.

    The lowest row is zero and the top row the largest value. Consecutive points are joined
    by vertical runs so the line reads as one.
    """
    width, height = max(width, 1), max(height, 1)
    if not values:
        return [" " * width] * height
    cols, rows = width * 2, height * 4
    top = max(max(values), 0) or 1
    n = len(values)
    # x for each value spread over the available dot columns
    xs = [0] if n == 1 else [round(i * (cols - 1) / (n - 1)) for i in range(n)]
    ys = [round(max(v, 0) / top * (rows - 1)) for v in values]
    grid = [[0] * width for _ in range(height)]

    def dot(x: int, y: int) -> None:
        row_from_top = rows - 1 - y
        cell_r, sub_r = divmod(row_from_top, 4)
        cell_c, sub_c = divmod(x, 2)
        grid[cell_r][cell_c] |= _DOTS[(sub_c, sub_r)]

    for i in range(n):
        dot(xs[i], ys[i])
        if i + 1 < n:
            x0, x1, y0, y1 = xs[i], xs[i + 1], ys[i], ys[i + 1]
            for x in range(x0 + 1, x1 + 1):  # interpolate between the two points
                y = round(y0 + (y1 - y0) * (x - x0) / (x1 - x0))
                prev = round(y0 + (y1 - y0) * (x - 1 - x0) / (x1 - x0))
                for yy in range(min(prev, y), max(prev, y) + 1):
                    dot(x, yy)
    return ["".join(chr(0x2800 + c) if c else " " for c in row) for row in grid]


def _num(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.0f}%"


def _minutes(v: float | None) -> str:
    if v is None:
        return "–"
    if v >= 1440:
        return f"{v / 1440:.1f}d"
    if v >= 120:
        return f"{v / 60:.1f}h"
    return f"{v:g}m"


class Chart(Static):
    """A titled chart that redraws to its width."""

    DEFAULT_CSS = """
    Chart { height: auto; padding: 0 1; margin-bottom: 1; }
    """

    def __init__(self, title: str, *, kind: str = "bars", id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.title_text = title
        self.kind = kind
        self.items: list[tuple[str, float]] = []
        self.note = ""

    def set_items(self, items: list[tuple[str, float]], note: str = "") -> None:
        self.items = items
        self.note = note
        self.refresh(layout=True)

    def render(self) -> Text:
        width = max(self.size.width - 2, 10)
        text = Text(self.title_text, style="bold")
        if self.note:
            text.append("  " + self.note, style="dim")
        if not self.items:
            text.append("\n" + _("No data for this period."), style="dim")
            return text
        if self.kind == "line":
            values = [v for _l, v in self.items]
            for line in line_chart(values, width, 4):
                text.append("\n" + line, style="cyan")
            first, last = self.items[0][0], self.items[-1][0]
            gap = max(width - len(first) - len(last), 1)
            text.append("\n" + first + " " * gap + last, style="dim")
        elif self.kind == "spark":
            values = [v for _l, v in self.items]
            text.append("\n" + sparkline(values)[:width], style="green")
        else:
            for line in bar_lines(self.items, width):
                text.append("\n" + line)
        return text


class DashboardScreen(Screen[None]):
    """Support metrics at a glance; push it from the console."""

    BINDINGS = [
        Binding("escape", "back", "Back", id="dashboard.back"),
        Binding("q", "back", "Back", show=False, id="dashboard.quit"),
        Binding("r", "refresh", "Refresh", id="dashboard.refresh"),
        Binding("1", "days(7)", "7 days", id="dashboard.7d"),
        Binding("2", "days(30)", "30 days", id="dashboard.30d"),
        Binding("3", "days(90)", "90 days", id="dashboard.90d"),
    ]

    DEFAULT_CSS = """
    DashboardScreen #dash-title { height: 1; padding: 0 1; background: $panel; }
    DashboardScreen #dash-figures { height: auto; padding: 0 1; margin-bottom: 1; }
    DashboardScreen Grid { grid-size: 2; grid-gutter: 0 1; height: auto; }
    """

    def __init__(self, desk: Desk, *, days: int = 30, until: date | None = None) -> None:
        super().__init__()
        translate_bindings(self)
        self.desk = desk
        self.days = days
        self.until = until
        self.doc: dict[str, Any] | None = None
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(_("Dashboard"), id="dash-title")
        with VerticalScroll():
            yield Static(_("Loading…"), id="dash-figures")
            yield Chart(_("Created per day"), kind="line", id="chart-created")
            yield Chart(_("Solved per day"), kind="spark", id="chart-solved")
            with Grid():
                yield Chart(_("Tickets by channel"), id="chart-channel")
                yield Chart(_("Tickets by priority"), id="chart-priority")
                yield Chart(_("Solved by agent"), id="chart-agent")
                yield Chart(_("Backlog by age"), id="chart-backlog")
                yield Chart(_("Top tags"), id="chart-tags")
                yield Chart(_("CSAT ratings"), id="chart-csat")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="dashboard")
    def load(self) -> None:
        try:
            doc = metrics.report(self.desk, None, self.until, days=self.days)
        except (ServiceError, ConfigError, StoreError) as exc:
            self.app.call_from_thread(self._show_error, str(exc))
            return
        self.app.call_from_thread(self._show, doc)

    def _show_error(self, message: str) -> None:
        self.error = message
        self.query_one("#dash-figures", Static).update(
            Text(inert(message, one_line=True), style="red")
        )

    def _show(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.error = None
        p = doc["period"]
        self.query_one("#dash-title", Static).update(
            Text(f"{_('Dashboard')} · {p['since']} – {p['until']} · {p['timezone']}", style="bold")
        )
        fr, res, cs = doc["first_response_minutes"], doc["resolution_minutes"], doc["csat"]
        rate = doc["sla_breach_rate"]
        figures = Text()
        rows = [
            (_("Created"), _num(doc["tickets_created"])),
            (_("Solved"), _num(doc["tickets_solved"])),
            (_("Backlog"), _num(doc["backlog"])),
            (_("First response"), f"{_minutes(fr['median'])} / p90 {_minutes(fr['p90'])}"),
            (_("calendar"), _minutes(doc["first_response_minutes_calendar"]["median"])),
            (_("Resolution"), f"{_minutes(res['median'])} / p90 {_minutes(res['p90'])}"),
            (_("calendar"), _minutes(doc["resolution_minutes_calendar"]["median"])),
            (_("SLA breached"), "–" if rate is None else f"{rate * 100:.1f}%"),
            (_("First contact"), _pct(doc["first_contact_resolution"]["rate"])),
            (_("Reopened"), _pct(doc["reopened"]["rate"])),
            (
                _("CSAT"),
                f"{_num(cs['average'])} ({cs['responses']}/{cs['requested']})",
            ),
            (_("NPS"), f"{_num(doc['nps']['score'])} ({doc['nps']['responses']})"),
        ]
        for i, (label, value) in enumerate(rows):
            if i:
                figures.append("   ")
            figures.append(label + " ", style="dim")
            figures.append(value, style="bold")
        self.query_one("#dash-figures", Static).update(figures)
        days = doc["volume_by_day"]
        self.query_one("#chart-created", Chart).set_items(
            [(d["date"][5:], float(d["created"])) for d in days],
            note=_("max {n}").format(n=max((d["created"] for d in days), default=0)),
        )
        self.query_one("#chart-solved", Chart).set_items(
            [(d["date"][5:], float(d["solved"])) for d in days],
            note=_("max {n}").format(n=max((d["solved"] for d in days), default=0)),
        )

        def safe(name: str) -> str:
            return inert(name, one_line=True)

        self.query_one("#chart-channel", Chart).set_items(
            [(safe(k), float(v["created"])) for k, v in doc["by_channel"].items()]
        )
        self.query_one("#chart-priority", Chart).set_items(
            [(_(k), float(v["created"])) for k, v in doc["by_priority"].items()]
        )
        self.query_one("#chart-agent", Chart).set_items(
            [(safe(k), float(v["solved"])) for k, v in doc["by_agent"].items() if v["solved"]]
        )
        self.query_one("#chart-backlog", Chart).set_items(
            [(b["age"], float(b["count"])) for b in doc["backlog_by_age"]] if doc["backlog"] else []
        )
        self.query_one("#chart-tags", Chart).set_items(
            [(safe(t["tag"]), float(t["count"])) for t in doc["top_tags"]]
        )
        self.query_one("#chart-csat", Chart).set_items(
            [(f"{k}★", float(n)) for k, n in reversed(cs["scores"].items())]
            if cs["responses"]
            else []
        )

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_refresh(self) -> None:
        self.load()

    def action_days(self, days: int) -> None:
        self.days = days
        self.load()
