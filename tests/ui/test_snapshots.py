"""Pinned pictures of the main screens at 80x24 and 120x40, in English and in Russian
(pytest-textual-snapshot): the queue, a ticket, the composer beside (or instead of) the thread,
the preview of what goes out, and the bulk confirmation.

Update after an intended change with ``make snapshots-update``, then look at the SVGs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from supportdesk.ui.app import make_app
from tests.ui.conftest import frozen, settle

SIZES = [(80, 24), (120, 40)]
LANGS = ["en", "ru"]

pytestmark = pytest.mark.parametrize(
    ("size", "lang"),
    [(s, lang) for lang in LANGS for s in SIZES],
    ids=lambda v: f"{v[0]}x{v[1]}" if isinstance(v, tuple) else v,
)


def test_queue_snapshot(snap_compare: Any, console_desk: tuple[Any, dict[str, int]],
                        size: tuple[int, int], lang: str) -> None:  # fmt: skip
    desk, _ids = console_desk
    app = make_app(desk, now=frozen, live=False, language=lang)
    assert snap_compare(app, terminal_size=size, run_before=settle)


def test_ticket_snapshot(snap_compare: Any, console_desk: tuple[Any, dict[str, int]],
                         size: tuple[int, int], lang: str) -> None:  # fmt: skip
    desk, ids = console_desk

    async def open_printer(pilot: Any) -> None:
        await settle(pilot)
        pilot.app.open_ticket(ids["printer"])
        await settle(pilot)

    app = make_app(desk, now=frozen, live=False, language=lang)
    assert snap_compare(app, terminal_size=size, run_before=open_printer)


async def _compose(pilot: Any, ticket_id: int, attachment: Path) -> None:
    await settle(pilot)
    pilot.app.open_ticket(ticket_id)
    await settle(pilot)
    await pilot.press("r")
    await settle(pilot)
    composer = pilot.app.screen.composer
    composer.body.cursor_blink = False
    composer.query_one("#cc").value = "boss@example.ru"
    composer.body.insert("Hello Ivan,\n\nplease send us the **printer model**.")
    composer.files.append(attachment)
    composer._update()
    await settle(pilot)


@pytest.fixture
def attachment(tmp_path: Path) -> Path:
    path = tmp_path / "steps.txt"
    path.write_bytes(b"1. Open the tray\n2. Remove the paper\n")
    return path


def test_composer_snapshot(snap_compare: Any, console_desk: tuple[Any, dict[str, int]],
                           size: tuple[int, int], lang: str, attachment: Path) -> None:  # fmt: skip
    """Beside the thread from 100 columns; at 80 the draft fills the screen (f2 flips)."""
    desk, ids = console_desk

    async def compose(pilot: Any) -> None:
        await _compose(pilot, ids["printer"], attachment)

    app = make_app(desk, now=frozen, live=False, language=lang)
    assert snap_compare(app, terminal_size=size, run_before=compose)


def test_preview_snapshot(snap_compare: Any, console_desk: tuple[Any, dict[str, int]],
                          size: tuple[int, int], lang: str, attachment: Path) -> None:  # fmt: skip
    desk, ids = console_desk

    async def preview(pilot: Any) -> None:
        await _compose(pilot, ids["printer"], attachment)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert pilot.app.screen.__class__.__name__ == "PreviewScreen"

    app = make_app(desk, now=frozen, live=False, language=lang)
    assert snap_compare(app, terminal_size=size, run_before=preview)


def test_bulk_confirmation_snapshot(snap_compare: Any, console_desk: tuple[Any, dict[str, int]],
                                    size: tuple[int, int], lang: str) -> None:  # fmt: skip
    desk, ids = console_desk

    async def confirm(pilot: Any) -> None:
        from supportdesk.ui.widgets.ticket_list import TicketList

        await settle(pilot)
        pilot.app.screen.query_one(TicketList).select_ids(
            [ids["printer"], ids["invoice"], ids["telegram"]]
        )
        await settle(pilot)
        pilot.app.screen.set_status(pilot.app.screen.triage_targets(), "closed")
        await settle(pilot)
        assert pilot.app.screen.__class__.__name__ == "ConfirmScreen"

    app = make_app(desk, now=frozen, live=False, language=lang)
    assert snap_compare(app, terminal_size=size, run_before=confirm)
