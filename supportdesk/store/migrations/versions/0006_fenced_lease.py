"""fenced runner lease: lease.epoch, outbox.claim_epoch and outbox.in_flight_at

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

``lease.epoch`` is a fencing token that grows by one whenever the runner lease changes hands.
An outbox claim records the claimer's epoch (``claim_epoch``); marking a row sent or failed is
a conditional update on that epoch still being the live one, so a runner that lost its lease
cannot mark anything. ``in_flight_at`` is set right before a send's point of no return: a claim
interrupted before it is queued again, one interrupted after it is "in doubt".
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import supportdesk.store.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lease", schema=None) as batch_op:
        batch_op.add_column(sa.Column("epoch", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claim_epoch", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("in_flight_at", supportdesk.store.models.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("in_flight_at")
        batch_op.drop_column("claim_epoch")
    with op.batch_alter_table("lease", schema=None) as batch_op:
        batch_op.drop_column("epoch")
