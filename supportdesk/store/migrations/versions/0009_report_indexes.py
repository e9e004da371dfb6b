"""indexes that let a report read only its period

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04

``reports.metrics`` finds the tickets a period touches through these: events of a kind in a
time range (``ix_event_kind_created``, which also answers every lookup ``ix_event_kind`` did, so
that one goes), tickets solved, closed or surveyed in the period, and outbox rows sent in it.
The backlog is counted on ``ix_ticket_status_created`` alone (no table rows), less the spam and
merged tickets of the partial index ``ix_ticket_left_out``.
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

INDEXES = [
    ("ix_event_kind_created", "event", "kind, created_at"),
    ("ix_ticket_solved_at", "ticket", "solved_at"),
    ("ix_ticket_closed_at", "ticket", "closed_at"),
    ("ix_ticket_csat_requested_at", "ticket", "csat_requested_at"),
    ("ix_outbox_sent_at", "outbox", "sent_at"),
    ("ix_ticket_status_created", "ticket", "status, created_at"),
]
# the spam and merged tickets, which the backlog count subtracts (reports.metrics.LEFT_OUT_SQL)
LEFT_OUT = (
    "CREATE INDEX IF NOT EXISTS ix_ticket_left_out ON ticket (status, created_at) "
    "WHERE spam OR substr(reply_to_address, 1, 7) = 'merged:'"
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})")
    op.execute(LEFT_OUT)
    op.execute("DROP INDEX IF EXISTS ix_event_kind")
    op.execute("ANALYZE")


def downgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS ix_event_kind ON event (kind)")
    op.execute("DROP INDEX IF EXISTS ix_ticket_left_out")
    for name, _table, _columns in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
