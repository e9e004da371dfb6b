"""PostgreSQL: the customers' and KB articles' GIN indexes on the kind's expression, not its range

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06

Migration 0013's partial GIN indexes had the kind's key range as their predicate, the range
``store.hits`` asked for. The primary key serves that range too, and the planner takes a common
word as ~50% selective for every kind (the statistics of ``tsv`` are over all documents), so at
1M tickets it walked ``search_doc_pkey`` backwards over all 333k customer documents for
``printer`` (which none holds: 42 ms) instead of asking the customers' own index. The predicate
is now ``(rowid >> 48) = kind``, an expression no other index serves, and ``store.hits`` asks
for these kinds by that expression (literal constants: the planner proves the predicate from
the query's text), so the kind's own GIN is the only indexed path. SQLite: nothing (FTS5).
"""

from __future__ import annotations

from collections.abc import Callable

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

SHIFT = 48  # store.fts.KIND_SHIFT, fixed by the documents already stored
KINDS = (("customer", 3), ("kb", 4))  # store.fts.KIND_CUSTOMER, KIND_KB


def _range(kind: int) -> str:  # 0013's predicate
    lo = kind << SHIFT
    return f"rowid >= {lo} AND rowid <= {lo + (1 << SHIFT) - 1}"


def _swap(predicate: Callable[[int], str]) -> None:
    for name, kind in KINDS:
        op.execute(f"DROP INDEX IF EXISTS ix_search_doc_tsv_{name}")
        op.execute(
            f"CREATE INDEX ix_search_doc_tsv_{name} ON search_doc "
            f"USING GIN (tsv) WHERE {predicate(kind)}"
        )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _swap(lambda kind: f"(rowid >> {SHIFT}) = {kind}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _swap(_range)
