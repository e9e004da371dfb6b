"""Plain-text captures of the console for the README: the queue, one ticket, and the composer
beside the thread (a short draft with a Cc), at 100x30.

    .venv/bin/python scripts/capture_console.py [--home DIR] [--ticket N] [--size 100x30]

Builds a demo desk (``supportdesk demo``) in a temporary folder unless ``--home`` names one,
opens the console headless, and prints each screen as the terminal would show it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


async def capture(home: Path, ticket: int | None, size: tuple[int, int]) -> dict[str, str]:
    from supportdesk.desk.desk import open_desk
    from supportdesk.ui.app import make_app, screen_text
    from supportdesk.ui.widgets.ticket_list import TicketList

    desk = open_desk(home)
    app = make_app(desk, live=False, language="en")
    out: dict[str, str] = {}
    async with app.run_test(size=size) as pilot:

        async def settle() -> None:
            for _ in range(3):
                await pilot.pause()
                await app.workers.wait_for_complete()
            await pilot.pause()

        await settle()
        out["queue"] = screen_text(app)
        target = ticket or app.screen.query_one(TicketList).current_id
        if target is not None:
            app.open_ticket(target)
            await settle()
            out["ticket"] = screen_text(app)
            await pilot.press("r")
            await settle()
            composer = app.screen.composer  # type: ignore[attr-defined]
            if composer.email:
                composer.query_one("#cc").value = "accounts@example.com"
            composer.body.insert(
                "Hello,\n\nthank you for writing. We have **refunded** the duplicate."
            )
            await settle()
            out["composer"] = screen_text(app)
    desk.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description="Text captures of the console for the README.")
    ap.add_argument("--home", type=Path, default=None, help="a desk home (default: a fresh demo)")
    ap.add_argument(
        "--ticket", type=int, default=None, help="the ticket to show (default: the top one)"
    )
    ap.add_argument("--size", default="100x30", help="terminal size, WIDTHxHEIGHT")
    args = ap.parse_args()
    width, _, height = args.size.partition("x")
    home = args.home
    if home is None:
        from supportdesk.demo.build import build_demo

        home = Path(tempfile.mkdtemp(prefix="supportdesk-capture-")) / "demo"
        build_demo(home).close()
    shots = asyncio.run(capture(home, args.ticket, (int(width), int(height))))
    for name, text in shots.items():
        sys.stdout.write(f"--- {name} ---\n")
        sys.stdout.write("\n".join(line.rstrip() for line in text.splitlines()) + "\n")


if __name__ == "__main__":
    main()
