"""The ``supportdesk`` command: the console when the command line only opens it
(``cli.console.fast_console``), the quick path for the read commands it can answer
(``cli.quick``), else the typer application (``cli.main``). Nothing heavy is imported here."""

from __future__ import annotations

import sys


def run() -> None:
    """The ``supportdesk`` command."""
    from supportdesk.cli.console import fast_console

    code = fast_console(sys.argv[1:])
    if code is None:
        from supportdesk.cli.quick import quick

        code = quick(sys.argv[1:])
    if code is None:
        from supportdesk.cli.main import run as full

        full()  # exits
    from supportdesk.cli.output import quick_exit

    quick_exit(code or 0)
