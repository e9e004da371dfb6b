"""Opening the console from the command line: from the typer application (``open_console``,
``supportdesk`` with no command), or before typer is loaded (``fast_console``).

The fast path takes only a command line that opens the console and nothing else: no command,
at most the global ``--home`` and ``--as`` (each once, with a value, as ``cli.quick`` reads
them), and the environment the typer options read (``SUPPORTDESK_HOME``, ``SUPPORTDESK_AGENT``,
``SUPPORTDESK_DB``). It opens the desk as the typer path does (``cli.deskstate.CliState``) and
runs the same ``run_console``; loading typer and building the application (every command's
options) is ~0.06-0.1 s of CPU that the console's start does not need. Anything else, and any
error before the console runs (no desk there, a refused agent, a bad config), goes the typer
way, which says what is wrong with its message and exit code. An error while the console runs
ends as the typer path ends it (``cli.context.exit_code_for``). ``SUPPORTDESK_QUICK=0`` turns
the fast path off, as it does the read commands' quick path; shell completion
(``_SUPPORTDESK_COMPLETE`` set, no command) is typer's.

Nothing here imports typer (tests/ui/test_console_entry.py checks it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer


def open_console(ctx: typer.Context) -> None:
    from supportdesk.cli.context import desk_of
    from supportdesk.ui.app import run_console

    run_console(desk_of(ctx))


def console_options(argv: list[str]) -> dict[str, str] | None:
    """The global options of a command line that only opens the console, or None."""
    env = os.environ
    if env.get("SUPPORTDESK_QUICK") == "0":
        return None
    if any(name.startswith("_") and name.endswith("_COMPLETE") for name in env):
        return None  # shell completion (``_SUPPORTDESK_COMPLETE``) runs with no command: typer's
    if any(
        env.get(name) == "" for name in ("SUPPORTDESK_HOME", "SUPPORTDESK_AGENT", "SUPPORTDESK_DB")
    ):
        return None  # what the typer options make of an empty variable is theirs to say
    from supportdesk.cli.quick import _globals as global_options

    split = global_options(argv)
    if split is None or split[1]:
        return None
    return split[0]


def fast_console(argv: list[str]) -> int | None:
    """Open the console for ``argv`` without typer and return the exit code when it closes, or
    None (before anything ran) for the typer path to take ``argv``."""
    glob = console_options(argv)
    if glob is None:
        return None
    from supportdesk.cli.deskstate import CliState

    env = os.environ
    home = glob.get("--home") or env.get("SUPPORTDESK_HOME")
    state = CliState(
        home=Path(home) if home else None,
        agent=glob.get("--as") or env.get("SUPPORTDESK_AGENT"),
        db_url=env.get("SUPPORTDESK_DB"),
    )
    try:
        from supportdesk.ui.app import run_console

        desk = state.desk()
    except Exception:
        return None  # nothing shown yet: the typer path says what went wrong
    import gc

    gc.set_threshold(10_000, 10, 10)  # as cli.main.run: start-up allocates a lot
    try:
        run_console(desk)
    except SystemExit as exc:  # as cli.main.run
        if isinstance(exc.code, int):
            return exc.code
        if exc.code is not None:
            sys.stderr.write(f"{exc.code}\n")
            return 1
        return 0
    except (KeyboardInterrupt, Exception) as exc:
        from supportdesk.cli.context import exit_code_for

        return exit_code_for(exc)
    return 0
