"""PostgreSQL: a GIN index of the search documents of customers, and one of KB articles

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05

``store.hits`` asks for the newest matches of one kind at a time (``rowid`` within the kind's
key range). For the customer and KB kinds the planner ANDs the whole GIN bitmap of the word
(every kind's documents: 47k entries for ``printer`` at 100k tickets) with the kind's range,
or at 10M walks the kind's whole range backwards (a word no customer holds: 7 s). A partial GIN
over the kind's range answers from that kind's entries alone (the range in the query is the
index's predicate, so the planner proves it). Tickets and messages keep the global index and
the backward walk, which stops after the window for a common word. SQLite: nothing (FTS5).
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

SHIFT = 48  # store.fts.KIND_SHIFT, fixed by the documents already stored
KINDS = (("customer", 3), ("kb", 4))


def _range(kind: int) -> str:
    lo = kind << SHIFT
    return f"rowid >= {lo} AND rowid <= {lo + (1 << SHIFT) - 1}"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, kind in KINDS:
        op.execute(
            f"CREATE INDEX IF NOT EXISTS ix_search_doc_tsv_{name} ON search_doc "
            f"USING GIN (tsv) WHERE {_range(kind)}"
        )
    op.execute("ANALYZE search_doc")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, _kind in KINDS:
        op.execute(f"DROP INDEX IF EXISTS ix_search_doc_tsv_{name}")
