"""the ticket tally the sidebar's view counts read, kept by triggers

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05

``ticket_tally`` (store/tally.py) counts the unsnoozed tickets by status, channel, kind,
assignee, priority, group and spam; triggers on ``ticket`` keep it as tickets are inserted,
changed and deleted (row triggers on SQLite; statement triggers with transition tables on
PostgreSQL, so a COPY updates it once per combination). It is filled here from the tickets.
``ix_ticket_status_due`` answers "SLA at risk" (open, due before a moment) from the index alone.
"""

from __future__ import annotations

from alembic import op

from supportdesk.store import tally

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

STATUS_DUE = "CREATE INDEX IF NOT EXISTS ix_ticket_status_due ON ticket (status, due_at)"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for sql in tally.ddl(dialect):
        op.execute(sql)
    for sql in tally.rebuild_sql():
        op.execute(sql)
    op.execute(STATUS_DUE)
    # statistics for the new index, or SQLite takes it for a selective one and leaves the
    # queue's index (ix_ticket_queue) for a sort of every open ticket
    op.execute("ANALYZE ticket")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_ticket_status_due")
    for sql in tally.drop_ddl(op.get_bind().dialect.name):
        op.execute(sql)
