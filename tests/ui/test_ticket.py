"""The ticket screen and the composer."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from supportdesk.people import presence
from supportdesk.store.models import Message, Outbox
from supportdesk.ui.app import make_app
from tests.ui.conftest import frozen, notes, settle, text_of, wait_for


async def open_ticket(pilot: Any, ticket_id: int) -> None:
    pilot.app.open_ticket(ticket_id)
    await settle(pilot)


async def test_thread_card_history_sla_and_quotes(console_desk: tuple[Any, dict[str, int]]) -> None:
    desk, ids = console_desk
    app = make_app(desk, now=frozen, live=False)
    async with app.run_test(size=(160, 50), notifications=True) as pilot:
        await open_ticket(pilot, ids["printer"])
        text = text_of(app)
        assert "Printer does not work" in text
        assert "joined: new ticket" in text
        assert "Which printer model is it?" in text and "queued" in text  # delivery state
        assert "internal note" in text and "model HP 1020" in text
        assert "error.log" in text
        # the customer card lists both identities, the history the Telegram ticket
        assert "email: ivan@example.ru" in text and "telegram: 555" in text
        assert f"#{ids['telegram']}" in text
        assert "First response:" in text and "Resolution:" in text
        assert "2 quoted lines folded" in text and "earlier mail line 1" not in text
        await pilot.press("f")
        await settle(pilot)
        assert "earlier mail line 1" in text_of(app)
        await pilot.press("i")
        await settle(pilot)
        assert not app.screen.query_one("#side").display
        await pilot.press("h")  # history picker -> open the Telegram ticket
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.ticket_id == ids["telegram"]  # type: ignore[attr-defined]


async def test_reply_with_template_goes_to_outbox(console_desk: tuple[Any, dict[str, int]]) -> None:
    desk, ids = console_desk
    app = make_app(desk, now=frozen, live=False)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await open_ticket(pilot, ids["invoice"])
        await pilot.press("r")
        await settle(pilot)
        assert app.screen.composer is not None  # type: ignore[attr-defined]
        await pilot.press("ctrl+t")
        await settle(pilot)
        await pilot.press(*"thanks", "enter")
        await settle(pilot)
        body = app.screen.query_one("#body").text  # type: ignore[attr-defined]
        assert body.startswith("Hello Olga,")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen.__class__.__name__ == "PreviewScreen"
        shown = text_of(app)
        assert "To:" in shown and "olga@example.com" in shown and "Re: Invoice 4471" in shown
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.__class__.__name__ == "TicketScreen"
        assert app.screen.composer is None  # type: ignore[attr-defined]
        assert "Thank you for writing." in text_of(app)
    with desk.db.read() as s:
        rows = s.exec(select(Outbox).where(Outbox.ticket_id == ids["invoice"])).all()
    assert [r.state for r in rows] == ["queued"]
    assert rows[0].to_address == "olga@example.com"


async def test_unresolved_placeholder_refuses_to_send(
    console_desk: tuple[Any, dict[str, int]],
) -> None:
    desk, ids = console_desk
    app = make_app(desk, now=frozen, live=False)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await open_ticket(pilot, ids["invoice"])
        await pilot.press("r")
        await settle(pilot)
        await pilot.press("ctrl+t")
        await settle(pilot)
        await pilot.press(*"company", "enter")
        await settle(pilot)
        body = app.screen.query_one("#body").text  # type: ignore[attr-defined]
        assert "{{ customer.company }}" in body  # left for the agent to fill in
        assert "Fill in before sending: customer.company" in text_of(app)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen.__class__.__name__ == "TicketScreen"  # refused, no preview
        error = str(app.screen.query_one("#composer-error").render())
        assert "customer.company" in error and "Fill in" not in error
        # the agent replaces the placeholder: now it sends
        area = app.screen.query_one("#body")
        area.load_text(body.replace("{{ customer.company }}", "Acme"))  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.composer is None  # type: ignore[attr-defined]
    with desk.db.read() as s:
        texts = [m.text for m in s.exec(select(Message).where(Message.ticket_id == ids["invoice"]))]
    assert any(t.startswith("Dear Acme team") for t in texts)


async def test_note_channel_choice_draft_and_empty(
    console_desk: tuple[Any, dict[str, int]],
) -> None:
    desk, ids = console_desk
    app = make_app(desk, now=frozen, live=False)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await open_ticket(pilot, ids["printer"])
        await pilot.press("r")
        await settle(pilot)
        # the customer also has Telegram: the composer offers it
        routes = [name for name, _label in app.screen.composer.routes]  # type: ignore[attr-defined]
        assert routes == ["support", "telegram"]
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "The reply is empty." in text_of(app)
        await pilot.press(*"draft text")
        await pilot.press("escape")
        await settle(pilot)
        assert app.drafts[ids["printer"]] == "draft text"
        await pilot.press("n")  # a note keeps the draft too
        await settle(pilot)
        assert "Internal note" in text_of(app)
        assert app.screen.query_one("#body").text == "draft text"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "Preview: internal note" in text_of(app)
        await pilot.press("enter")
        await settle(pilot)
        assert ids["printer"] not in app.drafts
    with desk.db.read() as s:
        notes = s.exec(select(Message).where(Message.ticket_id == ids["printer"],
                                             Message.direction == "note")).all()  # fmt: skip
        queued = s.exec(select(Outbox).where(Outbox.ticket_id == ids["printer"])).all()
    assert [n.text for n in notes][-1] == "draft text"
    assert len(queued) == 1  # only the reply made by the fixture


async def test_reply_on_telegram_route(console_desk: tuple[Any, dict[str, int]]) -> None:
    desk, ids = console_desk
    app = make_app(desk, now=frozen, live=False)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await open_ticket(pilot, ids["printer"])
        await pilot.press("r")
        await settle(pilot)
        app.screen.query_one("#route").value = "telegram"  # type: ignore[attr-defined]
        await pilot.press(*"hi there", "ctrl+s")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
    with desk.db.read() as s:
        row = s.exec(select(Outbox).order_by(Outbox.id.desc())).first()  # type: ignore[union-attr]
    assert row is not None and row.channel == "telegram" and row.to_address == "555"


async def test_editor_round_trip(console_desk: tuple[Any, dict[str, int]], tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from contextlib import nullcontext

    desk, ids = console_desk
    script = tmp_path / "ed.py"
    script.write_text("import sys\nopen(sys.argv[1], 'a').write('from the editor\\n')\n")
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")
    app = make_app(desk, now=frozen, live=False)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await open_ticket(pilot, ids["invoice"])
        await pilot.press("r")
        await settle(pilot)
        await pilot.press(*"typed ")
        await pilot.press("ctrl+o")  # headless: cannot suspend -> a clear error
        await settle(pilot)
        assert "cannot hand over to an editor" in text_of(app)
        monkeypatch.setattr(type(app), "suspend", lambda self: nullcontext())
        await pilot.press("ctrl+o")
        await settle(pilot)
        assert app.screen.query_one("#body").text == "typed from the editor"  # type: ignore[attr-defined]


async def test_attachments_save_and_open(console_desk: tuple[Any, dict[str, int]], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    import supportdesk.ui.screens.ticket as ticket_mod

    desk, ids = console_desk
    app = make_app(desk, now=frozen, live=False)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await open_ticket(pilot, ids["printer"])
        await pilot.press("w")
        await settle(pilot)
        await pilot.press("enter")  # the one attachment
        await settle(pilot)
        dest = tmp_path / "saved.log"
        app.screen.query_one("#prompt-input").value = str(dest)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await settle(pilot)
        assert not dest.exists()  # outside the downloads folder: asked first
        await pilot.press("y")
        await settle(pilot)
        assert dest.read_bytes() == b"paper jam\n"
        assert dest.stat().st_mode & 0o777 == 0o600
        monkeypatch.setattr(ticket_mod, "system_opener", lambda: None)
        await pilot.press("o", "enter")
        await settle(pilot)
        assert "No system opener" in notes(app)
        opened = tmp_path / "opened.txt"
        opener = tmp_path / "opener.sh"
        opener.write_text(f'#!/bin/sh\ncp "$1" {opened}\n')
        opener.chmod(0o755)
        monkeypatch.setattr(ticket_mod, "system_opener", lambda: [str(opener)])
        await pilot.press("o", "enter")
        await settle(pilot)
        await wait_for(pilot, opened.exists)
        assert opened.read_bytes() == b"paper jam\n"


async def test_presence_of_another_agent(console_desk: tuple[Any, dict[str, int]]) -> None:
    from dataclasses import replace

    desk, ids = console_desk
    bob = replace(desk, agent="bob")
    presence.heartbeat(bob, ids["printer"], "replying")
    app = make_app(desk, now=frozen, live=False)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await open_ticket(pilot, ids["printer"])
        await wait_for(pilot, lambda: "bob is replying" in text_of(app))
        assert [p.agent for p in presence.others(bob, ids["printer"])] == ["alice"]
        await pilot.press("escape")
        await settle(pilot)
    assert presence.others(bob, ids["printer"]) == []  # alice left the ticket


async def test_attachment_save_goes_to_downloads_never_a_dotfile_never_over_a_file(
    console_desk: tuple[Any, dict[str, int]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk, ids = console_desk
    downloads = tmp_path / "Downloads"
    monkeypatch.setenv("XDG_DOWNLOAD_DIR", str(downloads))
    folder = downloads / "supportdesk" / str(ids["printer"])
    app = make_app(desk, now=frozen, live=False)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await open_ticket(pilot, ids["printer"])
        for _ in range(2):  # the default, twice: the second copy gets a new name
            await pilot.press("w")
            await settle(pilot)
            await pilot.press("enter")
            await settle(pilot)
            await pilot.press("enter")
            await settle(pilot)
        saved = sorted(p.name for p in folder.iterdir())
        assert saved == ["error (2).log", "error.log"], saved
        # a customer's ".bashrc" is never saved as a dotfile, wherever the agent points it
        bashrc = tmp_path / ".bashrc"
        bashrc.write_text("mine\n")
        await pilot.press("w")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        app.screen.query_one("#prompt-input").value = str(bashrc)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert bashrc.read_text() == "mine\n"
        assert "hidden file" in notes(app)
        # nor over an existing file
        other = tmp_path / "notes.txt"
        other.write_text("keep\n")
        await pilot.press("w")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        app.screen.query_one("#prompt-input").value = str(other)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert other.read_text() == "keep\n"
        assert "already exists" in notes(app)
