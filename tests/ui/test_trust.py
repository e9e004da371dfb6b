"""Console items of issue 15: figures and actions a team can trust."""

from __future__ import annotations

from typing import Any

from supportdesk.ui.app import make_app
from tests.ui.conftest import frozen, settle, text_of


async def test_sla_panel_says_a_queued_reply_is_not_delivered(
    console_desk: tuple[Any, dict[str, int]],
) -> None:
    desk, ids = console_desk
    app = make_app(desk, now=frozen, live=False)
    async with app.run_test(size=(160, 50)) as pilot:
        app.open_ticket(ids["printer"])
        await settle(pilot)
        text = " ".join(text_of(app).replace("▏", " ").split())
        assert "First response: reply queued, not" in text
        assert "First response: done" not in text
