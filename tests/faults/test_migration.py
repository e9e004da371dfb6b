"""An interrupted migration: the database stays at the previous revision with its data, and the
next open upgrades it cleanly.

The upgrade runs in one transaction (``BEGIN IMMEDIATE``; SQLite DDL is transactional), so a
step that fails, or a process killed in the middle of ``alembic upgrade``, leaves nothing half
done. The interruption is placed inside migration 0002, after its DDL ran and while it fills the
search index.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from supportdesk.core.locations import database_path
from supportdesk.store import search as search_store
from supportdesk.store.db import Database, open_database, sqlite_url
from supportdesk.store.migrate import current_revision, head_revision, upgrade_if_needed

pytestmark = [pytest.mark.fault, pytest.mark.sqlite_only]  # SQLite's transactional DDL

FIRST = "0001"


def _first_schema_with_data(home: Path) -> None:
    home.mkdir(exist_ok=True)
    db = Database(sqlite_url(database_path(home)), home)
    upgrade_if_needed(db, FIRST)
    with db.write_engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO customer (id, name, company, phone, language, notes, csat_opt_out,"
                " created_at, updated_at) VALUES (1, 'Пётр', '', '', 'ru', '', 0,"
                " '2026-01-01 10:00:00', '2026-01-01 10:00:00')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO identity (customer_id, kind, address, display, created_at)"
                " VALUES (1, 'email', 'petr@example.ru', '', '2026-01-01 10:00:00')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO ticket (id, subject, status, priority, priority_rank, priority_locked,"
                " channel, kind, customer_id, created_at, updated_at, sla_paused_seconds,"
                " sla_breached, message_count, ack_sent, reply_to_address, spam) VALUES (7,"
                " 'Принтер не печатает', 'open', 'high', 2, 0, 'support', 'email', 1,"
                " '2026-01-01 10:00:00', '2026-01-01 10:00:00', 0, 0, 1, 0, 'petr@example.ru', 0)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO message (ticket_id, direction, channel, kind, author, author_address,"
                ' customer_id, dedupe_key, message_id, "references", subject, text, quoted_text,'
                " created_at, received_at, thread_reason, auto_reason, versions, is_auto) VALUES"
                " (7, 'in', 'support', 'email', 'Пётр', 'petr@example.ru', 1, 'old1@example.ru',"
                " 'old1@example.ru', '', 'Принтер не печатает', 'Мой принтер не печатает с утра',"
                " '', '2026-01-01 10:00:00', '2026-01-01 10:00:00', 'new ticket', '', '', 0)"
            )
        )
    db.dispose()


def _state(home: Path) -> tuple[str | None, set[str], list[tuple[Any, ...]]]:
    db = Database(sqlite_url(database_path(home)), home)
    try:
        with db.read_engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            rows = [tuple(r) for r in conn.execute(sa.text("SELECT id, subject FROM ticket"))]
        return current_revision(db), tables, rows
    finally:
        db.dispose()


def _check_next_open_upgrades(home: Path, cli: Callable[..., Any]) -> None:
    db = open_database(home)
    try:
        assert current_revision(db) == head_revision()
    finally:
        db.dispose()
    # the data came through, and the step that was interrupted did its work this time
    doc = json.loads(cli("tickets", "list", "--json").stdout)
    assert [(t["id"], t["subject"]) for t in doc] == [(7, "Принтер не печатает")]
    found = json.loads(cli("tickets", "list", "принтера", "--json").stdout)
    assert [t["id"] for t in found] == [7]


def test_failing_step_rolls_back_to_the_previous_revision(
    home: Path, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _first_schema_with_data(home)
    calls: list[int] = []

    def broken(conn: Any) -> None:
        calls.append(1)
        raise RuntimeError("simulated failure in the middle of migration 0002")

    with monkeypatch.context() as m:
        m.setattr(search_store, "rebuild_all", broken)
        db = Database(sqlite_url(database_path(home)), home)
        with pytest.raises(RuntimeError, match="simulated failure"):
            upgrade_if_needed(db)
        db.dispose()
    assert calls == [1]
    revision, tables, rows = _state(home)
    assert revision == FIRST
    assert "search_doc" not in tables  # the DDL that ran before the failure was rolled back
    assert rows == [(7, "Принтер не печатает")]
    _check_next_open_upgrades(home, cli)


KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
from supportdesk.store import search
from supportdesk.store.db import open_database

def killed(conn):
    # the schema of 0002 exists in this transaction now; die before it commits
    conn.exec_driver_sql("SELECT count(*) FROM search_doc").scalar()
    sys.stdout.write("killing\\n"); sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)

search.rebuild_all = killed
open_database(Path(sys.argv[1]))
"""


def test_process_killed_during_upgrade(home: Path, cli: Callable[..., Any]) -> None:
    _first_schema_with_data(home)
    env = {k: v for k, v in os.environ.items() if k != "SUPPORTDESK_HOME"}
    done = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(home)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == -9, done.stderr
    assert done.stdout == "killing\n"
    revision, tables, rows = _state(home)
    assert revision == FIRST
    assert "search_doc" not in tables
    assert rows == [(7, "Принтер не печатает")]
    _check_next_open_upgrades(home, cli)
