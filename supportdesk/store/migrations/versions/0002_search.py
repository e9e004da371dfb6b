"""full-text search index

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

SQLite: an FTS5 table ``search_doc`` plus delete triggers. PostgreSQL: a ``search_doc`` table with
a generated tsvector, a GIN index and delete triggers. The index is then filled from whatever the
tables already hold (stemming runs in Python: see supportdesk/store/search.py).
"""

from __future__ import annotations

from alembic import op

from supportdesk.store import search

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    search.create_schema(conn)
    search.rebuild_all(conn)


def downgrade() -> None:
    search.drop_schema(op.get_bind())
