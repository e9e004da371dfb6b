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


async def test_merging_two_customers_names_both_and_replies_reach_the_writer(
    console_desk: tuple[Any, dict[str, int]],
) -> None:
    from sqlmodel import select

    from supportdesk.store.models import Outbox
    from supportdesk.tickets import replying
    from tests.ui.conftest import notes, wait_for

    desk, ids = console_desk
    app = make_app(desk, now=frozen, live=False)
    async with app.run_test(size=(160, 50), notifications=True) as pilot:
        app.open_ticket(ids["hostile"])
        await settle(pilot)
        await pilot.press("M")
        await settle(pilot)
        await pilot.press(*str(ids["invoice"]), "enter")
        await settle(pilot)
        question = " ".join(text_of(app).split())
        assert "Mallory" in question and "Olga Sidorova" in question
        assert "DIFFERENT customers" in question
        await pilot.press("y")
        await settle(pilot)
        await wait_for(pilot, lambda: "Merged into" in notes(app), timeout=30)
    # the reply answers Mallory's message (the last one in): it goes to Mallory only
    msg = replying.reply(desk, ids["invoice"], text="We are looking into it.")
    with desk.db.read() as s:
        ob = s.exec(select(Outbox).where(Outbox.message_id == msg.id)).one()
        assert ob.to_address == "mallory@evil.test"


async def test_a_template_used_in_the_console_counts_as_used(
    console_desk: tuple[Any, dict[str, int]],
) -> None:
    from sqlmodel import select

    from supportdesk.store.models import Outbox, Template

    desk, ids = console_desk
    app = make_app(desk, now=frozen, live=False)
    async with app.run_test(size=(120, 30)) as pilot:
        app.open_ticket(ids["invoice"])
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        await pilot.press("ctrl+t")
        await settle(pilot)
        await pilot.press(*"thanks", "enter")
        await settle(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        if app.screen.__class__.__name__ == "PreviewScreen":  # what will be sent: confirm
            await pilot.press("enter")
            await settle(pilot)
        assert app.screen.__class__.__name__ == "TicketScreen"
    with desk.db.read() as s:
        tpl = s.exec(select(Template).where(Template.name == "thanks")).one()
        assert tpl.usage_count == 1
        ob = s.exec(select(Outbox).where(Outbox.ticket_id == ids["invoice"])).one()
        assert '"template": "thanks"' in ob.payload
