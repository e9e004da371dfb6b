"""`supportdesk demo`"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from supportdesk.cli.context import state
from supportdesk.cli.output import console


def demo_cmd(
    ctx: typer.Context,
    no_tui: bool = typer.Option(
        False, "--no-tui", help="Build the demo and print where it is; do not open the console."
    ),
    size: int = typer.Option(
        0, "--size", min=0, max=2_000_000, help="Add N synthetic tickets for scale tests."
    ),
    home_opt: Path | None = typer.Option(
        None, "--home", help="Where to build it (default: a demo folder beside your desk)."
    ),
) -> None:
    """Build a self-contained demo desk (Russian and English, e-mail and Telegram) and open it.

    The demo lives in its own folder and is rebuilt each time; your real desk is never touched.

    Example: supportdesk demo --size 100000 --no-tui
    """
    from supportdesk.core.locations import default_home
    from supportdesk.demo.build import build_demo

    st = state(ctx)
    home = (
        (home_opt or st.home or default_home().with_name("supportdesk-demo")).expanduser().resolve()
    )
    t0 = time.monotonic()
    desk = build_demo(home, size=size, db_url=st.db_url)
    took = time.monotonic() - t0
    con = console(stderr=not no_tui)
    con.print(f"Demo desk built in {home} ({took:.1f} s).")
    if no_tui:
        con.print(
            f"Look at it with:\n  supportdesk --home {home} tickets list\n"
            f"  supportdesk --home {home} tickets show 1\n  supportdesk --home {home}   (the console)"
        )
        desk.close()
        return
    from supportdesk.ui.app import run_console

    run_console(desk)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)
