"""A reply drafted before a newer customer message arrived warns before it is sent."""

from __future__ import annotations

from typing import Any

from supportdesk.tickets.read import show_ticket
from supportdesk.ui.app import make_app, screen_text
from supportdesk.ui.screens.composer import ComposerScreen
from tests.factories import inbound_email, ingest


async def test_composer_warns_once_about_a_newer_customer_message(desk: Any) -> None:
    r = ingest(desk, inbound_email(external_id="c1@x"))
    doc = show_ticket(desk, r.ticket_id)
    app = make_app(desk, live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        composer = ComposerScreen(desk, doc)
        await app.push_screen(composer)
        await pilot.pause()
        composer.body.insert("Перезапустите службу печати.")
        ingest(
            desk,
            inbound_email(
                external_id="c2@x", in_reply_to=["c1@x"], text="Уже не нужно, заработало!"
            ),
        )
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "Уже не нужно" in screen_text(app)
        assert app.screen is composer  # not sent yet
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is not composer
    doc = show_ticket(desk, r.ticket_id)
    assert [m["direction"] for m in doc["messages"]][-1] == "out"
