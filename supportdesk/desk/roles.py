"""Who acts, without opening the desk: the default agent and the `status` line about roles.
Imports nothing heavy (the command line's quick path uses it)."""

from __future__ import annotations

import getpass
import os
from typing import Any


def default_agent() -> str:
    env = os.environ.get("SUPPORTDESK_AGENT")
    if env:
        return env
    try:
        return getpass.getuser()
    except Exception:
        return "agent"


def roles_note(agent: str, login: Any = None) -> str:
    """One line for `status` and the console: who acts, and who enforces the roles.
    ``login`` is the team desk's ``TeamLogin`` (None elsewhere)."""
    if login is None:
        return (
            f"Roles: advisory (acting as {agent}; anyone who can write this desk's "
            "database can act as anyone)"
        )
    role = "lead" if login.lead else "runner" if login.runner else "agent"
    who = f"{login.user} ({role})" if agent == login.user else f"{login.user} ({role}) for {agent}"
    return f"Roles: enforced by PostgreSQL; you are {who}"
