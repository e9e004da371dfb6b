"""drop two indexes that a composite index already covers

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

``ix_message_ticket_created (ticket_id, created_at)`` answers every lookup by ticket_id that
``ix_message_ticket_id`` did, and ``ix_event_ticket_created`` does the same for
``ix_event_ticket_id``. Each of the two cost a B-tree insert per message or event written.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_message_ticket_id")
    op.execute("DROP INDEX IF EXISTS ix_event_ticket_id")


def downgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS ix_message_ticket_id ON message (ticket_id)")
    op.execute("CREATE INDEX IF NOT EXISTS ix_event_ticket_id ON event (ticket_id)")
