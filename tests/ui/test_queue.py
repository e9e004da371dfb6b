"""The queue screen: views, list, search, preview, inert customer text."""

from __future__ import annotations

from typing import Any

from supportdesk.ui.app import make_app
from supportdesk.ui.widgets.sidebar import ViewList
from supportdesk.ui.widgets.ticket_list import TicketList
from tests.ui.conftest import HOSTILE, frozen, settle, text_of, wait_for


async def test_queue_lists_open_tickets_hot_first(console_desk: tuple[Any, dict[str, int]]) -> None:
    desk, ids = console_desk
    app = make_app(desk, now=frozen, live=False)
    async with app.run_test(size=(160, 50), notifications=True) as pilot:
        await settle(pilot)
        tl = app.screen.query_one(TicketList)
        # the first view is Unassigned: every open ticket, none assigned yet
        assert tl.total == 4
        first = tl.row_at(0)
        assert first is not None
        assert first.priority in ("urgent", "high")
        text = text_of(app)
        assert "Printer does not work" in text
        assert "Invoice 4471 charged twice" in text
        assert "billing vip" in text
        assert "Old question" not in text  # solved: not in the open view
        vl = app.screen.query_one(ViewList)
        assert vl.counts["solved"] == 1
        assert vl.counts["channel:telegram"] == 1


async def test_hostile_subject_is_inert(console_desk: tuple[Any, dict[str, int]]) -> None:
    desk, ids = console_desk
    app = make_app(desk, now=frozen, live=False)
    async with app.run_test(size=(160, 50), notifications=True) as pilot:
        await settle(pilot)
        tl = app.screen.query_one(TicketList)
        index = next(i for i in range(tl.total) if tl.row_at(i).id == ids["hostile"])  # type: ignore[union-attr]
        tl.cursor = index
        await settle(pilot)
        text = text_of(app)
        assert "\x1b" not in text and "\x07" not in text
        assert "␛]52;c;SGVsbG8=\\x07[bold]x[/bold]" in text  # shown literally, markup not applied
        await pilot.press("enter")
        await settle(pilot)
        text = text_of(app)
        assert "\x1b" not in text
        assert "[bold]x[/bold]" in text and "[link=x]y[/link]" in text
        assert "␛[31mred" in text
    assert HOSTILE.startswith("\x1b")


async def test_search_filters_and_bad_query_shows_error(
    console_desk: tuple[Any, dict[str, int]],
) -> None:
    desk, ids = console_desk
    app = make_app(desk, now=frozen, live=False)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("slash")
        await pilot.press(*"tag:vip")
        await pilot.press("enter")
        await settle(pilot)
        tl = app.screen.query_one(TicketList)
        assert tl.total == 1 and tl.current_id == ids["invoice"]
        assert "Search: tag:vip" in text_of(app)
        await pilot.press("slash")
        app.screen.query_one("#search").value = ""  # type: ignore[attr-defined]
        await pilot.press(*"status:bogus")
        await pilot.press("enter")
        await settle(pilot)
        err = app.screen.query_one("#search-error")
        assert err.display
        assert "status is one of" in text_of(app)
        assert tl.total == 1  # the list is unchanged
        await pilot.press("escape")  # clears the search: back to the view
        await settle(pilot)
        assert tl.total == 4


async def test_views_switch_and_sidebar_toggle(console_desk: tuple[Any, dict[str, int]]) -> None:
    desk, ids = console_desk
    app = make_app(desk, now=frozen, live=False)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        vl = app.screen.query_one(ViewList)
        assert not vl.display  # narrow: hidden until v
        await pilot.press("v")
        await settle(pilot)
        assert vl.display and vl.has_focus
        solved = vl.index_of("solved")
        assert solved is not None
        vl.highlighted = solved
        await pilot.press("enter")
        await settle(pilot)
        tl = app.screen.query_one(TicketList)
        assert tl.total == 1 and tl.current_id == ids["old"]
        assert tl.has_focus


async def test_cursor_keys_and_mouse(console_desk: tuple[Any, dict[str, int]]) -> None:
    desk, ids = console_desk
    app = make_app(desk, now=frozen, live=False)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await settle(pilot)
        tl = app.screen.query_one(TicketList)
        await pilot.press("down", "down")
        assert tl.cursor == 2
        await pilot.press("up")
        assert tl.cursor == 1
        await pilot.press("end")
        assert tl.cursor == tl.total - 1
        await pilot.press("home")
        assert tl.cursor == 0
        await pilot.press("pagedown")
        assert tl.cursor == tl.total - 1
        await pilot.press("pageup")
        assert tl.cursor == 0
        await pilot.click(TicketList, offset=(10, 3))  # header row + two rows down
        assert tl.cursor == 2
        target = tl.current_id
        await pilot.click(TicketList, offset=(10, 3), times=2)
        await settle(pilot)
        assert app.screen.__class__.__name__ == "TicketScreen"
        assert app.screen.ticket_id == target  # type: ignore[attr-defined]
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen.__class__.__name__ == "QueueScreen"


async def test_preview_follows_cursor(console_desk: tuple[Any, dict[str, int]]) -> None:
    desk, ids = console_desk
    app = make_app(desk, now=frozen, live=False)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await settle(pilot)
        tl = app.screen.query_one(TicketList)
        for i in range(tl.total):
            row = tl.row_at(i)
            assert row is not None
            if row.id == ids["printer"]:
                tl.cursor = i
        await settle(pilot)
        preview = str(app.screen.query_one("#preview").render())
        assert "Printer does not work" in preview
        assert "Which printer model is it?" in preview  # the last non-note message


async def test_when_settled_runs_once_after_counts_health_and_preview(
    console_desk: tuple[Any, dict[str, int]], monkeypatch: Any
) -> None:
    """The in-console runner starts from ``when_settled``: only after the first screen has
    its view counts, the desk's health and the preview, in a thread, and only once."""
    import threading

    from supportdesk.tickets import views

    desk, ids = console_desk
    calls: list[bool] = []
    done, release = threading.Event(), threading.Event()
    counts = views.counts

    def slow_counts(*args: Any, **kwargs: Any) -> Any:
        release.wait(10)  # the counts hold back until the test lets them go
        return counts(*args, **kwargs)

    def when_settled() -> None:
        calls.append(threading.current_thread() is threading.main_thread())
        done.set()

    monkeypatch.setattr(views, "counts", slow_counts)
    app = make_app(desk, now=frozen, live=False, when_settled=when_settled)
    async with app.run_test(size=(160, 50)) as pilot:
        preview = lambda: str(app.screen.query_one("#preview").render())  # noqa: E731
        await wait_for(pilot, lambda: app.desk_status is not None and bool(preview().strip()))
        for _ in range(5):
            await pilot.pause(0.02)
        assert calls == []  # health and preview are in, the counts are not: not settled
        release.set()
        await wait_for(pilot, done.is_set)
        vl = app.screen.query_one(ViewList)
        assert all(v.key in vl.counts for v in vl.views)
        await pilot.press("down")  # another preview, counts again: no second call
        app.screen.action_refresh()  # type: ignore[attr-defined]
        await settle(pilot)
        assert app.screen.query_one(TicketList).cursor == 1
    assert calls == [False]
