"""The ``supportdesk`` command: the quick path for the read commands it can answer
(``cli.quick``), else the typer application (``cli.main``). Nothing heavy is imported here."""

from __future__ import annotations

import sys


def run() -> None:
    """The ``supportdesk`` command."""
    from supportdesk.cli.quick import quick

    code = quick(sys.argv[1:])
    if code is None:
        from supportdesk.cli.main import run as full

        full()
    quick_exit(code or 0)


def quick_exit(code: int) -> None:
    """Exit without tearing the interpreter down object by object (a tenth of a second after a
    big import, for nothing): exit handlers run and the output is flushed, then the process
    ends."""
    import atexit
    import logging
    import os

    logging.shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed pipe: nothing more can be said
    os._exit(code)
