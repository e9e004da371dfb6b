"""A small deterministic desk for the console tests, and helpers to drive the app."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from textual.app import App
from textual.widgets import Input

from tests.factories import Attachment, inbound_email, inbound_telegram, ingest

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HOSTILE = "\x1b]52;c;SGVsbG8=\x07[bold]x[/bold]"


def frozen() -> datetime:
    return NOW


@pytest.fixture(autouse=True)
def _no_cursor_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Input, "_toggle_cursor", lambda _self: None)


@pytest.fixture(autouse=True)
def _english_afterwards() -> Any:
    """A test that runs the console in Russian leaves the process in English for the next."""
    from supportdesk.core.i18n import set_language

    yield
    set_language("en")


def build_console_desk(desk: Any) -> dict[str, int]:
    """Tickets on both channels, a cross-channel customer, a note, a reply, an attachment,
    a hostile subject, templates and a second agent. Returns ticket ids by name."""
    from supportdesk.people import customers
    from supportdesk.people.agents import add_agent
    from supportdesk.replies.templates import add_template
    from supportdesk.tickets import triage

    t0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    ids: dict[str, int] = {}
    r = ingest(desk, inbound_email(
        subject="Printer does not work", text="Hello, my printer is broken.\nPlease help.",
        quoted_text="> earlier mail line 1\n> earlier mail line 2", sent_at=t0,
        external_id="printer-1@example.ru",
        attachments=[Attachment("error.log", "text/plain", b"paper jam\n", 10)],
    ), now=t0)  # fmt: skip
    ids["printer"] = r.ticket_id
    r = ingest(desk, inbound_telegram(chat_id=555, user_id=555, text="Бот не отвечает, срочно",
                                      sender_name="Иван Петров", username="ivanp",
                                      sent_at=t0 + timedelta(minutes=30)), now=t0)  # fmt: skip
    ids["telegram"] = r.ticket_id
    r = ingest(desk, inbound_email(
        subject="Invoice 4471 charged twice", text="I was charged twice.",
        sender_address="olga@example.com", sender_name="Olga Sidorova",
        external_id="inv-1@example.com", sent_at=t0 + timedelta(hours=1),
    ), now=t0)  # fmt: skip
    ids["invoice"] = r.ticket_id
    r = ingest(desk, inbound_email(
        subject=HOSTILE, text="evil \x1b[31mred\x1b[0m [link=x]y[/link]",
        sender_address="mallory@evil.test", sender_name="Mallory",
        external_id="evil-1@evil.test", sent_at=t0 + timedelta(hours=2),
    ), now=t0)  # fmt: skip
    ids["hostile"] = r.ticket_id
    r = ingest(desk, inbound_email(
        subject="Old question", text="Solved long ago.", sender_address="olga@example.com",
        sender_name="Olga Sidorova", external_id="old-1@example.com",
        sent_at=t0 - timedelta(days=10),
    ), now=t0)  # fmt: skip
    ids["old"] = r.ticket_id
    add_agent(desk, "alice", role="lead", display_name="Alice")
    add_agent(desk, "bob", display_name="Bob")
    add_template(desk, "thanks", "Hello {{ customer.first_name }},\n\nThank you for writing.\n",
                 subject="Thanks")  # fmt: skip
    add_template(desk, "company", "Dear {{ customer.company }} team,\n\nWe are on it.\n")
    customers.merge(desk, "telegram:555", "ivan@example.ru")
    triage.set_fields(desk, [ids["old"]], status="solved")
    triage.tag(desk, [ids["invoice"]], add=["billing", "vip"])
    triage.set_fields(desk, [ids["invoice"]], priority="high")
    from supportdesk.desk.records import get_ticket
    from supportdesk.outbound.outbox import queue_outbound

    with desk.db.write() as s:  # fixed times: the snapshots pin them
        t = get_ticket(s, ids["printer"])
        queue_outbound(s, desk, t, "Which printer model is it?", agent="alice",
                       at=t0 + timedelta(hours=1))  # fmt: skip
        queue_outbound(s, desk, t, "Customer called, model HP 1020.", agent="alice", note=True,
                       at=t0 + timedelta(hours=1, minutes=5))  # fmt: skip
    return ids


@pytest.fixture
def console_desk(desk: Any) -> tuple[Any, dict[str, int]]:
    return desk, build_console_desk(desk)


async def settle(pilot: Any) -> None:
    """Let workers finish and the screen repaint."""
    app = pilot.app
    quiet = 0  # rounds in a row with no worker running: a finished worker may start another
    for _ in range(20):
        await pilot.pause()
        busy = [w for w in app.workers if w.group != "live"]  # the live poller never ends
        if busy:
            quiet = 0
            await app.workers.wait_for_complete(busy)
        else:
            quiet += 1
            if quiet == 2:
                break
    await pilot.pause()


async def wait_for(pilot: Any, cond: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll ``cond`` with short pauses, failing after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


def text_of(app: App[Any]) -> str:
    from supportdesk.ui.app import screen_text

    return screen_text(app)


def notes(app: App[Any]) -> str:
    """Every notification shown so far (run the app with ``notifications=True``)."""
    return "\n".join(n.message for n in app._notifications)
