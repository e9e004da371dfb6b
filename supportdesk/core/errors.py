"""The errors a service raises for the user: one sentence each, and the CLI's exit code."""

from __future__ import annotations


class ServiceError(Exception):
    """A domain operation was refused; the message is one sentence for the user.

    ``code`` becomes the CLI's exit code: 1 general, 2 bad input, 3 not found, 4 refused
    (role), 5 conflict.
    """

    code = 1

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        # the input the sentence is about (``until``, ``status``...): the message names it in
        # words for every front-end; the CLI adds its flag
        self.field = field


class NotFound(ServiceError):
    code = 3


class BadInput(ServiceError):
    code = 2


class Refused(ServiceError):
    code = 4


class Conflict(ServiceError):
    code = 5


class StoreError(Exception):
    """The database cannot be opened or used (exit 7). One sentence."""


class Forbidden(StoreError):
    """The database refused the acting login a change (a team desk's roles; exit 4)."""


def refusal(exc: BaseException) -> Forbidden | None:
    """The database's "insufficient privilege" (SQLSTATE 42501) as one sentence, else None."""
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) != "42501":
        return None
    lines = str(orig).strip().splitlines()
    text = lines[0] if lines else ""
    if text.startswith(("permission denied", "new row violates")):
        return Forbidden(f"the database refused it: {text}")
    return Forbidden(text or "the database refused it")


class ConfigError(Exception):
    """config.toml is missing, unreadable or wrong. The message is one sentence."""
