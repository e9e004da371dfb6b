"""Pinned pictures of the main screens at 80x24 and 160x50 (pytest-textual-snapshot).

Update after an intended change with ``pytest tests/ui/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from typing import Any

import pytest

from supportdesk.ui.app import make_app
from tests.ui.conftest import frozen, settle

SIZES = [(80, 24), (160, 50)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_queue_snapshot(snap_compare: Any, console_desk: tuple[Any, dict[str, int]],
                        size: tuple[int, int]) -> None:  # fmt: skip
    desk, _ids = console_desk
    app = make_app(desk, now=frozen, live=False, language="en")
    assert snap_compare(app, terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_ticket_snapshot(snap_compare: Any, console_desk: tuple[Any, dict[str, int]],
                         size: tuple[int, int]) -> None:  # fmt: skip
    desk, ids = console_desk

    async def open_printer(pilot: Any) -> None:
        await settle(pilot)
        pilot.app.open_ticket(ids["printer"])
        await settle(pilot)

    app = make_app(desk, now=frozen, live=False, language="en")
    assert snap_compare(app, terminal_size=size, run_before=open_printer)
