"""an index in the queue's order (hot first), so the first page needs no sort

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # the same expressions as services.tickets.queue_order(), on SQLite and PostgreSQL alike
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_ticket_queue ON ticket "
        "(priority_rank DESC, (due_at IS NULL), due_at, id DESC)"
    )
    op.execute("ANALYZE")  # without statistics SQLite prefers the status index and sorts


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_ticket_queue")
