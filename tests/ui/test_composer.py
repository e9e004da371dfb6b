"""The composer beside the thread, the flip key below 100 columns, reply-all, files and the
size limit, the KB excerpt, send-and-solve; bulk selection and its confirmation."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from sqlmodel import select

from supportdesk.store.models import Outbox, Ticket
from supportdesk.ui.app import make_app
from supportdesk.ui.widgets.composer import Article, kb_excerpt
from tests.factories import inbound_email, ingest
from tests.ui.conftest import frozen, notes, settle, text_of, wait_for


async def test_beside_the_thread_and_flip_when_narrow(
    console_desk: tuple[Any, dict[str, int]],
) -> None:
    desk, ids = console_desk
    app = make_app(desk, now=frozen, live=False)
    async with app.run_test(size=(120, 30)) as pilot:
        app.open_ticket(ids["printer"])
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        screen = app.screen
        assert screen.query_one("#thread").display and screen.composer.display  # type: ignore[attr-defined]
        assert "Hello, my printer is broken." in text_of(app)  # the customer stays in view
        await pilot.press(*"draft kept")
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        assert not screen.query_one("#thread").display and screen.composer.display  # type: ignore[attr-defined]
        await pilot.press("f2")
        await settle(pilot)
        assert screen.query_one("#thread").display and not screen.composer.display  # type: ignore[attr-defined]
        assert "Hello, my printer is broken." in text_of(app)
        await pilot.press("f2")
        await settle(pilot)
        assert screen.composer.body.text == "draft kept"  # type: ignore[attr-defined]


async def test_reply_all_file_limit_and_send_and_solve(desk: Any, tmp_path: Path) -> None:
    r = ingest(desk, inbound_email(external_id="ra@x", sender_address="ann@client.test",
                                   to_addresses=["support@acme.test", "bob@client.test"],
                                   cc_addresses=["eve@client.test"]))  # fmt: skip
    small = tmp_path / "small.txt"
    small.write_text("ok\n")
    big = tmp_path / "big.bin"
    with big.open("wb") as fh:
        fh.truncate(26 * 1024 * 1024)
    app = make_app(desk, live=False)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        app.open_ticket(r.ticket_id)
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        composer = app.screen.composer  # type: ignore[attr-defined]
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert composer.query_one("#cc").value == "bob@client.test, eve@client.test"
        await pilot.press("ctrl+f")
        await settle(pilot)
        assert "carries up to 25.0 MB" in text_of(app)
        app.screen.dismiss(str(big))
        await settle(pilot)
        error = str(composer.query_one("#composer-error").render())
        assert "big.bin is too big" in error and composer.files == []
        await pilot.press("ctrl+f")
        await settle(pilot)
        app.screen.dismiss(str(small))
        await settle(pilot)
        assert composer.files == [small]
        await pilot.press(*"Done.")
        await pilot.press("ctrl+s")
        await settle(pilot)
        shown = text_of(app)
        assert "bob@client.test, eve@client.test" in shown and "small.txt" in shown
        await pilot.press("s")  # send and solve
        await settle(pilot)
        assert "Reply queued; the ticket is solved." in notes(app)
    with desk.db.read() as s:
        t = s.get(Ticket, r.ticket_id)
        row = s.exec(select(Outbox).where(Outbox.ticket_id == r.ticket_id)).one()
    assert t is not None and t.status == "solved"
    assert '"cc": ["bob@client.test", "eve@client.test"]' in row.payload


def test_kb_excerpt_is_clean_and_linked() -> None:
    art = Article(
        1,
        "Принтер не печатает",
        "# Принтер не печатает\n\nПерезапустите службу.\n\n## Ещё\n\nПроверьте бумагу.",
        "",
    )
    text = kb_excerpt(art, "https://help.acme.test/printer.html")
    assert not any(line.startswith("#") for line in text.splitlines())
    assert text.startswith("Перезапустите службу.")
    assert text.endswith("More: https://help.acme.test/printer.html")


async def test_select_all_and_confirm_closing_unanswered(
    console_desk: tuple[Any, dict[str, int]],
) -> None:
    from supportdesk.ui.widgets.ticket_list import TicketList

    desk, ids = console_desk
    app = make_app(desk, now=frozen, live=False)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await settle(pilot)
        tl = app.screen.query_one(TicketList)
        tl.focus()
        await pilot.press("asterisk")
        await settle(pilot)
        n = len(tl.selected)
        assert n >= 3
        app.screen.set_status(app.screen.triage_targets(), "closed")  # type: ignore[attr-defined]
        await settle(pilot)
        assert f"Set {n} ticket(s) to closed?" in text_of(app) and "never got a reply" in text_of(
            app
        )
        await pilot.press("n")
        await settle(pilot)
        with desk.db.read() as s:
            assert s.get(Ticket, ids["invoice"]).status == "new"  # type: ignore[union-attr]
        app.screen.set_status(app.screen.triage_targets(), "closed")  # type: ignore[attr-defined]
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert f"on {n} ticket(s)." in notes(app)


async def test_palette_runs_every_key_of_the_screen_by_its_russian_name(
    console_desk: tuple[Any, dict[str, int]],
) -> None:
    desk, ids = console_desk
    app = make_app(desk, now=frozen, live=False, language="ru")
    async with app.run_test(size=(120, 30)) as pilot:
        app.open_ticket(ids["printer"])
        await settle(pilot)
        await pilot.press("ctrl+p")
        await settle(pilot)
        await pilot.press(*"Переслать")
        await wait_for(pilot, lambda: "Переслать (F)" in text_of(app))
        await pilot.press("enter")
        await settle(pilot)
        assert "Что переслать?" in text_of(app)


async def test_russian_console_undo_units_dates_reasons_and_help(
    console_desk: tuple[Any, dict[str, int]],
) -> None:
    desk, ids = console_desk
    app = make_app(desk, now=frozen, live=False, language="ru")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        assert "? Справка" in text_of(app).rstrip().splitlines()[-1].replace("  ", " ")
        assert "4ч" in text_of(app) and "4h" not in text_of(app)
        app.open_ticket(ids["old"])
        await settle(pilot)
        shown = text_of(app)
        assert "причина: новое обращение" in shown and "10 нояб." in shown
        await pilot.press("a")
        await settle(pilot)
        await pilot.press("enter")  # me
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        assert f"Отменено ваше последнее действие; обращений: 1 — #{ids['old']}." in notes(app)
        from rich.console import Console

        from supportdesk.ui.screens.help import binding_table

        out = Console(width=120, record=True, file=io.StringIO())
        out.print(binding_table(app, app.help_sections()))
        table = out.export_text()
        assert "Выделить обращение и перейти ниже" in table  # space: select and move down
        assert "Переслать обращение" in table and "Ответить всем" in table
