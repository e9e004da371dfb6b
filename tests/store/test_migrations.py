"""An older database is upgraded on open with its data kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from supportdesk.core.locations import database_path
from supportdesk.store.db import Database, open_database, sqlite_url
from supportdesk.store.migrate import current_revision, head_revision, upgrade_if_needed


def test_first_schema_with_data_is_upgraded(home: Path) -> None:
    home.mkdir(exist_ok=True)
    (home / "raw").mkdir()
    (home / "attachments").mkdir()
    db = Database(sqlite_url(database_path(home)), home)
    upgrade_if_needed(db, "0001")
    assert current_revision(db) == "0001"
    with db.write_engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO customer (id, name, company, phone, language, notes, csat_opt_out, created_at, updated_at)"
                " VALUES (1, 'Пётр Ёлкин', '', '', 'ru', '', 0, '2026-01-01 10:00:00', '2026-01-01 10:00:00')"
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
                "INSERT INTO ticket (id, subject, status, priority, priority_rank, priority_locked, channel, kind,"
                " customer_id, created_at, updated_at, sla_paused_seconds, sla_breached, message_count, ack_sent,"
                " reply_to_address, spam) VALUES (7, 'Принтер не печатает', 'open', 'high', 2, 0, 'support', 'email',"
                " 1, '2026-01-01 10:00:00', '2026-01-01 10:00:00', 0, 0, 1, 0, 'petr@example.ru', 0)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO message (ticket_id, direction, channel, kind, author, author_address, customer_id,"
                ' dedupe_key, message_id, "references", subject, text, quoted_text, created_at, received_at,'
                " thread_reason, auto_reason, versions, is_auto) VALUES (7, 'in', 'support', 'email', 'Пётр',"
                " 'petr@example.ru', 1, 'old1@example.ru', 'old1@example.ru', '', 'Принтер не печатает',"
                " 'Мой принтер не печатает с утра', '', '2026-01-01 10:00:00', '2026-01-01 10:00:00',"
                " 'new ticket', '', '', 0)"
            )
        )
    db.dispose()

    db2 = open_database(home)  # upgrades on open
    assert current_revision(db2) == head_revision() != "0001"
    with db2.read_engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT subject, status, priority FROM ticket WHERE id = 7")
        ).one()
        assert tuple(row) == ("Принтер не печатает", "open", "high")
        assert conn.execute(sa.text("SELECT count(*) FROM message")).scalar() == 1
    db2.dispose()


def test_the_upgraded_desk_works(home: Path, cli) -> None:  # type: ignore[no-untyped-def]
    db = Database(sqlite_url(database_path(home)), home)
    (home / "raw").mkdir(exist_ok=True)
    upgrade_if_needed(db, "0001")
    db.dispose()
    res = cli("tickets", "list", "--json")
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == "[]"


@pytest.fixture(params=["sqlite", "postgres"])
def first_schema_db(request: pytest.FixtureRequest, home: Path) -> Iterator[Database]:
    """A database at the first schema (0001), on SQLite and on a real PostgreSQL."""
    if request.param == "sqlite":
        home.mkdir(exist_ok=True)
        db = Database(sqlite_url(database_path(home)), home)
    else:
        db = Database(str(request.getfixturevalue("pg_empty_url")))
    upgrade_if_needed(db, "0001")
    yield db
    db.dispose()


@pytest.mark.sqlite_only  # picks its backends itself
def test_first_schema_with_data_is_upgraded_on_both_backends(first_schema_db: Database) -> None:
    """Data written under 0001 (a ticket, its message, a waiting reply, the runner lease) is
    all there after the upgrade to head, with the new columns' defaults (0006: the lease epoch,
    the outbox claim) on the old rows, on SQLite and PostgreSQL alike."""
    db = first_schema_db
    t = "2026-01-01 10:00:00"
    with db.write_engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO customer (id, name, company, phone, language, notes, csat_opt_out,"
                " created_at, updated_at) VALUES (1, 'Пётр Ёлкин', '', '', 'ru', '', :f, :t, :t)"
            ),
            {"f": False, "t": t},
        )
        conn.execute(
            sa.text(
                "INSERT INTO ticket (id, subject, status, priority, priority_rank, priority_locked,"
                " channel, kind, customer_id, created_at, updated_at, sla_paused_seconds,"
                " sla_breached, message_count, ack_sent, reply_to_address, spam) VALUES (7,"
                " 'Принтер не печатает', 'open', 'high', 2, :f, 'support', 'email', 1, :t, :t, 0,"
                " :f, 1, :f, 'petr@example.ru', :f)"
            ),
            {"f": False, "t": t},
        )
        conn.execute(
            sa.text(
                "INSERT INTO outbox (id, ticket_id, channel, kind, to_address, state, attempts,"
                " last_error, external_message_id, sent_parts, payload, created_at) VALUES (3, 7,"
                " 'support', 'email', 'petr@example.ru', 'queued', 0, '', 'm1@acme.test', 0,"
                " '{}', :t)"
            ),
            {"t": t},
        )
        conn.execute(
            sa.text(
                "INSERT INTO lease (name, holder, pid, host, heartbeat_at, expires_at)"
                " VALUES ('runner', 'old:1', 1, 'old', :t, :t)"
            ),
            {"t": t},
        )
    assert upgrade_if_needed(db)
    assert current_revision(db) == head_revision()
    with db.read_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT subject FROM ticket WHERE id = 7")).scalar() == (
            "Принтер не печатает"
        )
        row = conn.execute(
            sa.text("SELECT state, claim_epoch, in_flight_at FROM outbox WHERE id = 3")
        ).one()
        assert tuple(row) == ("queued", None, None)
        assert conn.execute(sa.text("SELECT epoch FROM lease")).scalar() == 0
