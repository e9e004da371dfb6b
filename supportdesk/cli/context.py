"""What every command shares: the global options' state, the open desk, and turning errors into
one sentence and an exit code."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from typer._click import exceptions as click_exc
from typer.core import TyperGroup

from supportdesk.cli.deskstate import CliState
from supportdesk.cli.output import fail

if TYPE_CHECKING:
    from supportdesk.desk.desk import Desk


class DeskGroup(TyperGroup):
    """Turns every known error into one sentence on stderr and a documented exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except click_exc.UsageError as exc:
            # one sentence, like every other error; the usage is a -h away
            where = exc.ctx.command_path if exc.ctx is not None else "supportdesk"
            fail(f"{exc.format_message()} (see `{where} -h`)", exc.exit_code)
        except (typer.Exit, typer.Abort, click_exc.ClickException):
            raise
        except Exception as exc:
            _fail_for(exc)


# How the command line names the inputs that services' errors are about (ServiceError.field).
FLAGS = {
    "until": "--until", "status": "--status, --priority", "add": "--add, --remove", "via": "--via", "text": "--text",
    "subject": "--subject", "to": "--to", "kind": "--kind", "since": "--since",
    "force": "--force", "customer": "--customer", "home": "--home", "name": "--name",
    "database": "--db",
}  # fmt: skip


def _fail_for(exc: Exception) -> NoReturn:
    """One sentence and the documented exit code for an error a command raised.

    The error classes are imported here, not before the command runs: a command that never
    touches the database must not pay for loading SQLAlchemy (scripts run us often).
    """
    from supportdesk.core.config import ConfigError
    from supportdesk.core.errors import Forbidden, StoreError, refusal
    from supportdesk.desk.desk import ServiceError

    if isinstance(exc, ServiceError):
        flag = FLAGS.get(exc.field or "")
        fail(f"{exc} ({flag})" if flag else str(exc), exc.code)
    if isinstance(exc, ConfigError):
        fail(str(exc), 6)
    if isinstance(exc, Forbidden):
        fail(str(exc), 4)
    denied = refusal(exc)  # a refusal that came past the service's transaction
    if denied is not None:
        fail(str(denied), 4)
    if isinstance(exc, StoreError):
        fail(str(exc), 7)
    if type(exc).__name__ == "OperationalError" and type(exc).__module__.startswith(
        ("sqlalchemy", "sqlite3", "psycopg")
    ):
        if "locked" in str(exc) or "lock timeout" in str(exc):
            fail(
                "the database stayed locked by another writer longer than the wait allows; "
                "try again in a moment",
                7,
            )
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
        fail(f"the database could not be used: {first}", 7)
    if isinstance(exc, BrokenPipeError):
        sys.stderr.close()
        raise typer.Exit(0) from None
    if isinstance(exc, OSError):
        fail(f"{exc.strerror or exc}{': ' + str(exc.filename) if exc.filename else ''}", 1)
    # the last guard: never a traceback for the user
    where = _log_traceback()
    fail(f"internal error ({type(exc).__name__}): {exc}; details in {where}", 70)


def exit_code_for(exc: BaseException) -> int:
    """What ``DeskGroup.invoke`` makes of an error a command raised, for a command run without
    typer (the console's fast path, ``cli.console.fast_console``): the same sentence on stderr,
    and the exit code it returns instead of raising."""
    try:
        if isinstance(exc, KeyboardInterrupt):
            fail("interrupted", 130)
        if isinstance(exc, Exception):
            _fail_for(exc)
    except typer.Exit as done:
        return done.exit_code
    raise exc


def _log_traceback() -> str:
    """Keep the traceback for a bug report, away from the user's terminal."""
    import tempfile
    import traceback

    from supportdesk.core.locations import default_home

    for base in (default_home() / "logs", Path(tempfile.gettempdir())):
        try:
            base.mkdir(parents=True, exist_ok=True, mode=0o700)
            private = base != Path(tempfile.gettempdir())
            path = base / (
                "supportdesk-errors.log" if private else f"supportdesk-{os.getuid()}.log"
            )
            # 0600 and never through a link: a traceback can quote a customer's mail
            fd = os.open(
                path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
            )
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                if os.fstat(fd).st_uid == os.geteuid():
                    os.fchmod(fd, 0o600)
                fh.write(traceback.format_exc() + "\n")
            return str(path)
        except OSError:
            continue
    return "(nowhere: no writable log folder)"


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


def desk_of(ctx: typer.Context) -> Desk:
    return state(ctx).desk()


EPILOG = "Exit codes: 0 ok, 1 error, 2 bad input, 3 not found, 4 refused, 5 conflict, 6 config, 7 database."
