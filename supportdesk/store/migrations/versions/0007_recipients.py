"""message recipients (To, Cc, Bcc) and agent signatures

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04

An inbound message keeps its To and Cc addresses: they are the thread's participants, whom
reply-all answers. An outbound message records its To, Cc and Bcc. Agents get a signature
(JSON, one text per language). Space-separated normalized addresses, "" when there were none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD/DROP COLUMN (SQLite 3.35+, PostgreSQL): a batch copy of the message table
    # would trip the foreign keys that point at it
    for name in ("to_addresses", "cc_addresses", "bcc_addresses"):
        op.add_column("message", sa.Column(name, sa.String(), nullable=False, server_default=""))
    op.add_column("agent", sa.Column("signature", sa.String(), nullable=False, server_default=""))


def downgrade() -> None:
    op.execute("ALTER TABLE agent DROP COLUMN signature")
    for name in ("bcc_addresses", "cc_addresses", "to_addresses"):
        op.execute(f"ALTER TABLE message DROP COLUMN {name}")
