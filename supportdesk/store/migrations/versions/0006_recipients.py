"""message recipients (To, Cc, Bcc) and agent signatures

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

An inbound message keeps its To and Cc addresses: they are the thread's participants, whom
reply-all answers. An outbound message records its To, Cc and Bcc. Agents get a signature
(JSON, one text per language). Space-separated normalized addresses, "" when there were none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message") as batch:
        for name in ("to_addresses", "cc_addresses", "bcc_addresses"):
            batch.add_column(sa.Column(name, sa.String(), nullable=False, server_default=""))
    with op.batch_alter_table("agent") as batch:
        batch.add_column(sa.Column("signature", sa.String(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("agent") as batch:
        batch.drop_column("signature")
    with op.batch_alter_table("message") as batch:
        for name in ("bcc_addresses", "cc_addresses", "to_addresses"):
            batch.drop_column(name)
