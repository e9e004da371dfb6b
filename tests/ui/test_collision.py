"""A reply drafted before a newer customer message arrived warns before it is sent."""

from __future__ import annotations

from typing import Any

from supportdesk.tickets.read import show_ticket
from supportdesk.ui.app import make_app, screen_text
from tests.factories import inbound_email, ingest


async def test_composer_warns_once_about_a_newer_customer_message(desk: Any) -> None:
    r = ingest(desk, inbound_email(external_id="c1@x"))
    app = make_app(desk, live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        app.open_ticket(r.ticket_id)
        await pilot.pause()
        await pilot.press("r")
        await pilot.pause()
        composer = app.screen.composer  # type: ignore[attr-defined]
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
        assert app.screen.__class__.__name__ == "TicketScreen"  # not sent, no preview yet
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "PreviewScreen"
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.composer is None  # type: ignore[attr-defined]
    doc = show_ticket(desk, r.ticket_id)
    assert [m["direction"] for m in doc["messages"]][-1] == "out"
