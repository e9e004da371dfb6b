"""the team desk's audit log (PostgreSQL)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04

``audit_log`` holds one row per change a person makes on a team desk: who (``session_user``),
for whom (a lead's ``--as``), which table, row and operation, and what changed. Triggers fill
it; ``supportdesk team init`` installs them, with the roles they name and the privileges that
make the table append-only for everyone but the owner (store/teamdb.py). The table itself is
part of the schema from this revision on; desks that ``team init`` set up before it already
have it, with the same columns, and keep their rows.

SQLite desks get no audit log: roles are advisory there, and the event history says who did
what.
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS audit_log (
          id BIGSERIAL PRIMARY KEY,
          at TIMESTAMPTZ NOT NULL DEFAULT now(),
          db_user TEXT NOT NULL,
          on_behalf_of TEXT,
          tbl TEXT NOT NULL,
          op TEXT NOT NULL,
          row_id TEXT,
          detail TEXT NOT NULL DEFAULT '{}'
        )
        """
    )
    op.execute("CREATE INDEX IF NOT EXISTS ix_audit_log_tbl_row ON audit_log (tbl, row_id)")


def downgrade() -> None:
    # the audit log is history: a downgrade keeps it (the triggers team init installed write
    # to it, and the older team init makes it only if it is missing)
    pass
