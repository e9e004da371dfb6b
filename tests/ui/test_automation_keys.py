"""The console's automation keys: x runs a macro after a preview, ! marks spam (u undoes)."""

from __future__ import annotations

from typing import Any

from supportdesk.store.models import Ticket
from supportdesk.ui.app import make_app
from tests.automation.conftest import write_rules
from tests.ui.conftest import frozen, notes, settle
from tests.ui.test_keys import move_to


def _ticket(desk: Any, tid: int) -> Ticket:
    with desk.db.read() as s:
        t = s.get(Ticket, tid)
        assert t is not None
        return t


async def test_macro_key_previews_then_runs(console_desk: tuple[Any, dict[str, int]]) -> None:
    desk, ids = console_desk
    inv = ids["invoice"]
    write_rules(
        desk.home,
        """
        [[macro]]
        name = "wait-for-customer"
        then = [{ action = "status", status = "pending" }, { action = "tag", add = ["waiting"] }]
        """,
    )
    app = make_app(desk, now=frozen, live=False)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await settle(pilot)
        await move_to(pilot, inv)
        await pilot.press("x")
        await settle(pilot)
        await pilot.press(*"wait", "enter")  # the picker: type to filter, Enter to choose
        await settle(pilot)
        assert _ticket(desk, inv).status != "pending"  # only previewed so far
        await pilot.press("y")
        await settle(pilot)
        assert _ticket(desk, inv).status == "pending"
        assert "Macro wait-for-customer done" in notes(app)
        await pilot.press("u")
        await settle(pilot)
        assert _ticket(desk, inv).status != "pending"


async def test_spam_key_and_undo(console_desk: tuple[Any, dict[str, int]]) -> None:
    desk, ids = console_desk
    inv = ids["invoice"]
    app = make_app(desk, now=frozen, live=False)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await settle(pilot)
        await move_to(pilot, inv)
        await pilot.press("exclamation_mark")
        await settle(pilot)
        t = _ticket(desk, inv)
        assert t.spam and t.status == "closed"
        assert "Marked 1 ticket(s) as spam." in notes(app)
        await pilot.press("u")
        await settle(pilot)
        assert not _ticket(desk, inv).spam
