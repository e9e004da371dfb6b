"""live updates: NOTIFY on audit events and presence (PostgreSQL)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

PostgreSQL: triggers that ``NOTIFY supportdesk`` with ``{"kind", "ticket_id", "event_id"}`` for
every new audit event, and ``{"kind": "presence", "ticket_id"}`` when a presence row appears,
goes, or changes activity (a heartbeat that only extends the lease stays quiet). Consoles
``LISTEN`` through supportdesk/tickets/live.py. SQLite needs nothing: its watchers poll
``PRAGMA data_version``.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CHANNEL = "supportdesk"

UPGRADE = (
    f"""
CREATE OR REPLACE FUNCTION supportdesk_notify_event() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('{CHANNEL}', json_build_object(
    'kind', NEW.kind, 'ticket_id', NEW.ticket_id, 'event_id', NEW.id)::text);
  RETURN NULL;
END $$ LANGUAGE plpgsql
""",
    f"""
CREATE OR REPLACE FUNCTION supportdesk_notify_presence() RETURNS trigger AS $$
DECLARE
  tid integer;
BEGIN
  IF TG_OP = 'DELETE' THEN tid := OLD.ticket_id; ELSE tid := NEW.ticket_id; END IF;
  PERFORM pg_notify('{CHANNEL}', json_build_object('kind', 'presence', 'ticket_id', tid)::text);
  RETURN NULL;
END $$ LANGUAGE plpgsql
""",
    "CREATE TRIGGER live_event_ai AFTER INSERT ON event FOR EACH ROW "
    "EXECUTE FUNCTION supportdesk_notify_event()",
    "CREATE TRIGGER live_presence_aid AFTER INSERT OR DELETE ON presence FOR EACH ROW "
    "EXECUTE FUNCTION supportdesk_notify_presence()",
    "CREATE TRIGGER live_presence_au AFTER UPDATE ON presence FOR EACH ROW "
    "WHEN (OLD.activity IS DISTINCT FROM NEW.activity OR OLD.ticket_id IS DISTINCT FROM "
    "NEW.ticket_id) EXECUTE FUNCTION supportdesk_notify_presence()",
)

DOWNGRADE = (
    "DROP TRIGGER IF EXISTS live_presence_au ON presence",
    "DROP TRIGGER IF EXISTS live_presence_aid ON presence",
    "DROP TRIGGER IF EXISTS live_event_ai ON event",
    "DROP FUNCTION IF EXISTS supportdesk_notify_presence()",
    "DROP FUNCTION IF EXISTS supportdesk_notify_event()",
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for stmt in UPGRADE:
            op.execute(stmt)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for stmt in DOWNGRADE:
            op.execute(stmt)
