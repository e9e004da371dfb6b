"""A website chat in the console: the visitor's text is shown as text, never as markup."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from supportdesk.channels.base import InboundMessage
from supportdesk.inbound.push import DeskSink
from supportdesk.ui.app import make_app
from tests.ui.conftest import frozen, settle, text_of

HOSTILE = "[bold]shout[/bold] [link=http://evil.test]click[/link] <script>x()</script> \x1b[31mred"


async def test_hostile_website_chat_is_inert_in_the_console(desk: Any) -> None:
    msg = InboundMessage(
        kind="web",
        external_id="web:vHOSTILE:c-000001",
        sender_address="vHOSTILE",
        sender_name="[red]Mallory[/red]",
        text=HOSTILE,
        raw=json.dumps({"text": HOSTILE}).encode(),
        sent_at=datetime.now(UTC),
        channel="site",
        # as the widget sends it: the visitor's conversation, where replies go, the page
        extra={
            "conversation": "vHOSTILE",
            "chat_id": "vHOSTILE",
            "page": "https://shop.test/pricing?x=[b]y[/b]",
        },
    )
    [stored] = await DeskSink(desk)([msg])
    assert stored.ticket_id
    app = make_app(desk, now=frozen, live=False)
    async with app.run_test(size=(160, 50), notifications=True) as pilot:
        await settle(pilot)
        app.open_ticket(stored.ticket_id)
        await settle(pilot)
        text = text_of(app)
        assert "\x1b" not in text
        assert "[bold]shout[/bold]" in text and "[link=http://evil.test]click[/link]" in text
        assert "<script>x()</script>" in text and "␛[31mred" in text
        assert "[red]Mallory[/red]" in text
        assert "the visitor is on https://shop.test/pricing?x=[b]y[/b]" in text  # the page
