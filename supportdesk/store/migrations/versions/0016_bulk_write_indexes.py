"""fewer index entries per imported ticket: redundant indexes go, sparse ones skip their NULLs

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06

Every ticket an import (or the intake) writes was an entry in 24 indexes; on PostgreSQL that was
the biggest part of the server's ``COPY ticket``. Checked reader by reader on both backends
(docs/NOTES.md, "Import on PostgreSQL: the ticket's indexes"):

- Dropped, because a wider index starts with the same column and serves every range and
  equality the narrow one did: ``ix_ticket_status`` (``ix_ticket_status_created``,
  ``ix_ticket_status_due``), ``ix_ticket_priority_rank`` (``ix_ticket_queue``),
  ``ix_ticket_channel`` (``ix_ticket_report_by``), ``ix_ticket_created_at``
  (``ix_ticket_report``).
- Dropped, because no query is better off with them: ``ix_ticket_priority`` (four values; the
  views' counts come from the ticket tally, their pages walk ``ix_ticket_queue``, the report's
  skip scans ``ix_ticket_report_by``) and ``ix_ticket_sla_breached`` (a flag, filtered only with
  other conditions or in the SLA pass's full scan).
- Partial (``WHERE column IS NOT NULL``, same names): the columns a new ticket leaves NULL, which
  every reader compares with ``=``, ``IN``, a range or ``IS NOT NULL`` -- all of which imply the
  index's condition on both backends: ``ix_ticket_assignee_id``, ``ix_ticket_group``,
  ``ix_ticket_solved_at``, ``ix_ticket_closed_at``, ``ix_ticket_csat_requested_at``,
  ``ix_ticket_snoozed_until``, and ``ix_event_batch`` (an undo batch; most events have none).
  A NULL entry cost as much as any other (more: thousands of equal keys, one leaf page's
  deduplication after another on PostgreSQL) and no query asked for the NULLs through them.

SQLite gets the same indexes (one schema); its statistics for the ticket table are taken again,
as migrations 0004, 0011 and 0012 do, or its planner takes an index it knows nothing of for a
selective one.
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

DROPPED = (
    ("ix_ticket_status", "ticket", '"status"'),
    ("ix_ticket_priority_rank", "ticket", '"priority_rank"'),
    ("ix_ticket_channel", "ticket", '"channel"'),
    ("ix_ticket_created_at", "ticket", '"created_at"'),
    ("ix_ticket_priority", "ticket", '"priority"'),
    ("ix_ticket_sla_breached", "ticket", '"sla_breached"'),
)
PARTIAL = (
    ("ix_ticket_assignee_id", "ticket", "assignee_id"),
    ("ix_ticket_group", "ticket", "group"),
    ("ix_ticket_solved_at", "ticket", "solved_at"),
    ("ix_ticket_closed_at", "ticket", "closed_at"),
    ("ix_ticket_csat_requested_at", "ticket", "csat_requested_at"),
    ("ix_ticket_snoozed_until", "ticket", "snoozed_until"),
    ("ix_event_batch", "event", "batch"),
)


def upgrade_sql() -> list[str]:
    """The statements of the upgrade (also run by the plan tests and the audit script)."""
    out = [f"DROP INDEX IF EXISTS {name}" for name, _table, _cols in DROPPED]
    for name, table, column in PARTIAL:
        out.append(f"DROP INDEX IF EXISTS {name}")
        out.append(f'CREATE INDEX {name} ON {table} ("{column}") WHERE "{column}" IS NOT NULL')
    return out


def downgrade_sql() -> list[str]:
    out = []
    for name, table, column in PARTIAL:
        out.append(f"DROP INDEX IF EXISTS {name}")
        out.append(f'CREATE INDEX {name} ON {table} ("{column}")')
    out += [f"CREATE INDEX IF NOT EXISTS {name} ON {t} ({cols})" for name, t, cols in DROPPED]
    return out


def _analyze() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ANALYZE ticket")
        op.execute("ANALYZE event")


def upgrade() -> None:
    for sql in upgrade_sql():
        op.execute(sql)
    _analyze()


def downgrade() -> None:
    for sql in downgrade_sql():
        op.execute(sql)
    _analyze()
