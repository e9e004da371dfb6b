"""Triage from the keyboard, bulk selection, undo, help, keymap, palette, live updates, i18n."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from supportdesk.store.models import Agent, Ticket
from supportdesk.ui.app import make_app
from supportdesk.ui.widgets.ticket_list import TicketList
from tests.factories import inbound_email, ingest
from tests.ui.conftest import NOW, frozen, notes, settle, text_of, wait_for


def ticket(desk: Any, tid: int) -> Ticket:
    with desk.db.read() as s:
        t = s.get(Ticket, tid)
        assert t is not None
        return t


def assignee(desk: Any, tid: int) -> str | None:
    with desk.db.read() as s:
        t = s.get(Ticket, tid)
        a = s.get(Agent, t.assignee_id) if t and t.assignee_id else None
        return a.name if a else None


async def move_to(pilot: Any, tid: int) -> None:
    tl = pilot.app.screen.query_one(TicketList)
    for i in range(tl.total):
        row = tl.row_at(i)
        if row is not None and row.id == tid:
            tl.cursor = i
            await settle(pilot)
            return
    raise AssertionError(f"#{tid} is not in the list")


async def test_triage_keys_on_the_queue(console_desk: tuple[Any, dict[str, int]]) -> None:
    desk, ids = console_desk
    inv = ids["invoice"]
    app = make_app(desk, now=frozen, live=False)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await settle(pilot)
        await move_to(pilot, inv)
        await pilot.press("s")  # status picker
        await settle(pilot)
        await pilot.press(*"pend", "enter")
        await settle(pilot)
        assert ticket(desk, inv).status == "pending"
        await pilot.press("slash", *f"id:{inv}", "enter")  # pending left the view: search it
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot)
        await pilot.press(*"urgent", "enter")
        await settle(pilot)
        assert ticket(desk, inv).priority == "urgent"
        await pilot.press("t")
        await settle(pilot)
        await pilot.press(*"refund -vip", "enter")
        await settle(pilot)
        row = app.screen.query_one(TicketList).row_at(0)
        assert row is not None and row.tags == ["billing", "refund"]
        await pilot.press("a")  # assign picker: "me" first
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert assignee(desk, inv) == "alice"
        await pilot.press("a")
        await settle(pilot)
        await pilot.press(*"bob", "enter")
        await settle(pilot)
        assert assignee(desk, inv) == "bob"
        await pilot.press("u")  # undo: back to alice
        await settle(pilot)
        assert assignee(desk, inv) == "alice"
        assert "Undone" in notes(app)
        await pilot.press("z")
        await settle(pilot)
        await pilot.press(*"2h", "enter")
        await settle(pilot)
        snoozed = ticket(desk, inv).snoozed_until
        assert snoozed is not None
        await pilot.press("z")
        await settle(pilot)
        await pilot.press(*"whenever", "enter")
        await settle(pilot)
        assert "is not a time" in notes(app)  # a clear sentence, no crash
        assert "--until" not in notes(app)  # the console has no flags: the field is named in words


async def test_bulk_select_assign_and_merge(console_desk: tuple[Any, dict[str, int]]) -> None:
    desk, ids = console_desk
    app = make_app(desk, now=frozen, live=False)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await settle(pilot)
        tl = app.screen.query_one(TicketList)
        await pilot.press("space", "space")  # select the first two, cursor moves on
        picked = sorted(tl.selected)
        assert len(picked) == 2 and tl.cursor == 2
        assert "2 selected" in text_of(app)
        await pilot.press("m")  # take both
        await settle(pilot)
        assert [assignee(desk, t) for t in picked] == ["alice", "alice"]
        assert not tl.selected  # the selection is used up
        # merge one ticket into another from the ticket screen, confirming
        app.open_ticket(ids["hostile"])
        await settle(pilot)
        await pilot.press("M")
        await settle(pilot)
        await pilot.press(*str(ids["invoice"]), "enter")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert ticket(desk, ids["hostile"]).status == "closed"
        assert "Merged into" in notes(app)


async def test_help_lists_every_binding_and_keymap_remaps(
    console_desk: tuple[Any, dict[str, int]],
) -> None:
    desk, ids = console_desk
    desk.config.desk.keymap = {"triage.assign": "A", "app.help": "f1,question_mark"}
    app = make_app(desk, now=frozen, live=False)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        await pilot.press("a")  # no longer bound
        await settle(pilot)
        assert app.screen.__class__.__name__ == "QueueScreen"
        await pilot.press("A")
        await settle(pilot)
        assert app.screen.__class__.__name__ == "PickerScreen"
        await pilot.press("escape", "f1")
        await settle(pilot)
        assert app.screen.__class__.__name__ == "HelpScreen"
        from rich.console import Console

        from supportdesk.ui.screens.help import binding_table

        assert "triage.assign" in text_of(app)
        table = binding_table(app, app.help_sections())
        con = Console(width=150, force_terminal=False)
        with con.capture() as cap:
            con.print(table)
        out = cap.get()
        for _section, cls in app.help_sections():
            for b in cls.__dict__.get("BINDINGS", []):  # our own bindings: every one has an id
                assert b.id is not None, f"{cls.__name__}: {b.key} has no id"
                assert b.id in out, b.id
        assert "A  " in out.split("triage.assign")[0].splitlines()[-1]  # shows the remapped key
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen.__class__.__name__ == "QueueScreen"


async def test_command_palette_switches_view(console_desk: tuple[Any, dict[str, int]]) -> None:
    desk, ids = console_desk
    app = make_app(desk, now=frozen, live=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await settle(pilot)
        await pilot.press(*"view: Solved")
        await wait_for(pilot, lambda: "view: Solved" in text_of(app))
        await pilot.press("enter")
        await settle(pilot)
        tl = app.screen.query_one(TicketList)
        assert tl.total == 1 and tl.current_id == ids["old"]


async def test_new_ticket_appears_live(console_desk: tuple[Any, dict[str, int]]) -> None:
    desk, ids = console_desk
    app = make_app(desk, now=frozen, live=True, poll_interval=0.2)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await settle(pilot)
        tl = app.screen.query_one(TicketList)
        before = tl.total
        r = ingest(desk, inbound_email(subject="Live arrival", sender_address="new@example.org",
                                       external_id="live-1@example.org",
                                       sent_at=NOW - timedelta(minutes=1)))  # fmt: skip
        await wait_for(pilot, lambda: tl.total == before + 1)
        # the toast comes from the same poll, but may be drawn a refresh after the count
        note = f"New ticket #{r.ticket_id}: Live arrival"
        await wait_for(pilot, lambda: note in notes(app))
        await wait_for(pilot, lambda: "Live arrival" in text_of(app))


async def test_russian_interface(console_desk: tuple[Any, dict[str, int]]) -> None:
    desk, ids = console_desk
    app = make_app(desk, now=frozen, live=False, language="ru")
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            await settle(pilot)
            text = text_of(app)
            assert "Неназначенные" in text and "Тема" in text
            assert "Поиск" in text
    finally:
        from supportdesk.core.i18n import set_language

        set_language("en")
