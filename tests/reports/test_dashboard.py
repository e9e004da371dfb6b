"""The dashboard screen: mounted in a tiny app at 80x24, it shows the report's figures."""

from __future__ import annotations

import re
from datetime import date
from html import unescape
from typing import Any

from textual.app import App
from textual.widgets import Static

from supportdesk.ui.screens.dashboard import (
    EIGHTHS,
    Chart,
    DashboardScreen,
    bar_lines,
    hbar,
    line_chart,
    sparkline,
)
from tests.sla.helpers import build_history


class DashApp(App[None]):
    def __init__(self, desk: Any, **kw: Any) -> None:
        super().__init__()
        self.desk = desk
        self.kw = kw

    def on_mount(self) -> None:
        self.push_screen(DashboardScreen(self.desk, **self.kw))


def _screen_text(app: App[Any]) -> str:
    svg = app.export_screenshot()
    return unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")


async def _loaded(app: DashApp, pilot: Any) -> DashboardScreen:
    screen = app.screen
    assert isinstance(screen, DashboardScreen)
    for _ in range(100):  # bounded: the worker thread finishes in well under a second
        await screen.workers.wait_for_complete()
        await pilot.pause()
        if screen.doc is not None or screen.error is not None:
            break
    return screen


def _eighths(bar: str) -> int:
    return sum(8 if ch == "█" else EIGHTHS.index(ch) for ch in bar)


async def test_dashboard_shows_the_figures_at_80x24(bdesk: Any) -> None:
    build_history(bdesk)
    app = DashApp(bdesk, until=date(2026, 11, 30), days=30)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _loaded(app, pilot)
        assert screen.error is None and screen.doc is not None
        assert screen.doc["tickets_created"] == 5
        figures = str(screen.query_one("#dash-figures", Static).content)
        assert "Created 5" in figures and "Solved 4" in figures
        assert "60m / p90 90m" in figures and "2.1h / p90 5.0h" in figures
        assert "60.0%" in figures and "4.5 (2/3)" in figures
        # business and calendar time side by side, first-contact resolution and reopen rate
        assert "calendar 1.7d" in figures and "calendar 23.0h" in figures
        assert "First contact 100%" in figures and "Reopened 0%" in figures
        assert "NPS – (0)" in figures  # no NPS answers in this history
        text = _screen_text(app)
        assert "2026-11-01 – 2026-11-30" in text
        assert "Created 5" in text
        channel = str(screen.query_one("#chart-channel", Chart).render())
        # bars to scale, whatever width the grid gives the chart: telegram's is a quarter of
        # support's, to the eighth of a cell (the width differs by a column between runs)
        bars = {m[1]: _eighths(m[2]) for m in re.finditer(r"(\w+)\s+([█▏▎▍▌▋▊▉]+)\s+\d", channel)}
        assert re.search(r"support\s+█+\s+4", channel) and re.search(r"telegram █+.*\s1$", channel)
        assert bars["support"] >= 16 and abs(bars["telegram"] - bars["support"] / 4) <= 1
        tags = str(screen.query_one("#chart-tags", Chart).render())
        assert "billing" in tags and "complaint" in tags
        created = str(screen.query_one("#chart-created", Chart).render())
        assert any("\u2800" < ch <= "\u28ff" for ch in created)  # a braille line
        # switch to 7 days: the period and the figures follow
        await pilot.press("1")
        await _loaded(app, pilot)
        assert screen.doc is not None and screen.doc["period"]["since"] == "2026-11-24"
        assert screen.doc["tickets_created"] == 0
        await pilot.press("escape")
        assert not isinstance(app.screen, DashboardScreen)


async def test_dashboard_reports_a_problem_instead_of_crashing(bdesk: Any) -> None:
    app = DashApp(bdesk, until=date(2026, 11, 30), days=30)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        await _loaded(app, pilot)
        assert screen.doc is not None and screen.doc["tickets_created"] == 0
        assert "No data for this period." in str(screen.query_one("#chart-tags", Chart).render())


def test_chart_drawing() -> None:
    assert hbar(5, 10, 10) == "█████"
    assert hbar(8, 16, 1) == "▌"
    assert hbar(1, 16, 1) == "▏"  # never invisible
    assert hbar(0, 10, 10) == ""
    lines = bar_lines([("support", 4), ("telegram", 1)], 30)
    assert lines[0].startswith("support ") and lines[0].endswith(" 4")
    assert all(len(line) == 30 for line in lines)
    assert sparkline([0, 1, 2, 4]) == " ▂▄█"
    chart = line_chart([0, 4, 0], 3, 2)
    assert len(chart) == 2 and all(len(row) == 3 for row in chart)
    assert chart[0][1] != " "  # the peak reaches the top row
    assert line_chart([], 4, 2) == ["    ", "    "]
