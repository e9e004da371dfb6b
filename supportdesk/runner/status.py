"""The desk's health: channels, runner, outbox and quarantine sizes."""

from __future__ import annotations

from typing import Any

from supportdesk.desk.desk import Desk
from supportdesk.runner.health import status_doc
from supportdesk.store.db import session_run


def desk_status(desk: Desk) -> dict[str, Any]:
    with desk.db.read() as s:
        return status_doc(
            session_run(s), desk.config.desk.name, [(c.name, c.type) for c in desk.config.channel]
        )
