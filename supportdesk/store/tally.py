"""The ticket tally: how many tickets there are of each kind, kept by triggers.

``ticket_tally`` holds one row (or, after a race on PostgreSQL, a few rows: read the sum) per
combination of the columns the sidebar's views filter on -- status, channel, kind, assignee,
priority, group, spam -- with the number ``n`` of *unsnoozed* tickets of that combination.
Triggers on ``ticket`` keep it (migration 0011): an insert adds one, a delete takes one away,
an update of one of those columns (or of ``snoozed_until``) moves the ticket from one row to
another. A snoozed ticket is left out of the tally because "is:open" depends on the time
(``snoozed_until <= now``); the few snoozed tickets are counted on their own through
``ix_ticket_snoozed_until``.

A view's count is then its own filter (the clause ``search.query.apply_query`` builds, the one
``tickets.views.count`` runs) evaluated on the tally's rows, weighted by ``n``, plus the same
filter over the snoozed tickets: a few hundred rows read instead of every ticket. A filter that
names any other column (a deadline, a date, a tag, words) is not re-targeted and the caller
counts it on the tickets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import visitors

from supportdesk.store.models import Ticket

TALLY_COLUMNS = (
    "status",
    "channel",
    "kind",
    "assignee_id",
    "priority",
    "priority_rank",
    "group",
    "spam",
)
_TICKET = Ticket.__table__  # type: ignore[attr-defined]

tally = sa.Table(
    "ticket_tally",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    *[sa.Column(c, _TICKET.c[c].type) for c in TALLY_COLUMNS],
    sa.Column("n", sa.Integer, nullable=False),
)


class NotTallied(Exception):
    """The filter names a column the tally does not keep."""


def on_tally(clause: Any) -> Any:
    """``clause`` (a filter on ``ticket``) re-targeted to ``ticket_tally``'s rows, where every
    ticket is unsnoozed; raises NotTallied if it names another ticket column."""
    snoozed = sa.literal(None, type_=_TICKET.c.snoozed_until.type)

    def replace(elem: Any, **_kw: Any) -> Any:
        if isinstance(elem, sa.Column) and elem.table is _TICKET:
            if elem.name == "snoozed_until":
                return snoozed
            if elem.name not in TALLY_COLUMNS:
                raise NotTallied(elem.name)
            return tally.c[elem.name]
        if isinstance(elem, sa.Table) and elem is _TICKET:
            raise NotTallied("ticket")
        return None

    return visitors.replacement_traverse(clause, {}, replace)  # type: ignore[call-overload]


def count_many(conn: Any, clauses: list[Any]) -> list[int]:
    """The number of tickets each filter matches (a filter of None matches every ticket), from
    the tally and the snoozed tickets. Raises NotTallied if a filter names an untallied column.
    """
    if not clauses:
        return []
    on_rows = [on_tally(c) if c is not None else None for c in clauses]

    def weighted(c: Any, weight: Any) -> Any:
        return sa.func.coalesce(
            sa.func.sum(weight if c is None else sa.case((c, weight), else_=0)), 0
        )

    unsnoozed = conn.execute(
        sa.select(*[weighted(c, tally.c.n) for c in on_rows]).select_from(tally)
    ).one()
    # through the index of snooze times: with the statistics of a desk where nothing is
    # snoozed, "snoozed_until IS NOT NULL" alone made SQLite read every ticket (0.2 s at 1M)
    snoozed_ids = sa.select(_TICKET.c.id).where(_TICKET.c.snoozed_until.is_not(None))
    snoozed = conn.execute(
        sa.select(*[weighted(c, sa.literal(1)) for c in clauses])
        .select_from(_TICKET)
        .where(_TICKET.c.id.in_(snoozed_ids.scalar_subquery()))
    ).one()
    return [int(a or 0) + int(b or 0) for a, b in zip(unsnoozed, snoozed, strict=True)]


# -- the triggers (migration 0011) -----------------------------------------------------------

_COLS = ", ".join(f'"{c}"' for c in TALLY_COLUMNS)


def _match(row: str, op: str) -> str:
    return " AND ".join(f'"{c}" {op} {row}."{c}"' for c in TALLY_COLUMNS)


def _changed(op: str) -> str:
    cols = [*TALLY_COLUMNS, "snoozed_until"]
    return " OR ".join(f'old."{c}" {op} new."{c}"' for c in cols)


def _sqlite_step(row: str, delta: int) -> str:
    """SQLite: add ``delta`` to the tally row of ``row`` (new or old), or make that row."""
    same = _match(row, "IS")
    values = ", ".join(f'{row}."{c}"' for c in TALLY_COLUMNS)
    return (
        f"UPDATE ticket_tally SET n = n + ({delta}) WHERE id = "
        f"(SELECT id FROM ticket_tally WHERE {same} LIMIT 1);\n"
        f"INSERT INTO ticket_tally ({_COLS}, n) SELECT {values}, {delta} "
        f"WHERE NOT EXISTS (SELECT 1 FROM ticket_tally WHERE {same});"
    )


def sqlite_ddl() -> list[str]:
    cols = ",\n".join(f'  "{c}" {_sql_type(c)}' for c in TALLY_COLUMNS)
    return [
        f"CREATE TABLE IF NOT EXISTS ticket_tally (\n  id INTEGER PRIMARY KEY,\n{cols},\n"
        "  n INTEGER NOT NULL\n)",
        f"CREATE INDEX IF NOT EXISTS ix_ticket_tally_key ON ticket_tally ({_COLS})",
        "CREATE TRIGGER IF NOT EXISTS ticket_tally_insert AFTER INSERT ON ticket "
        f"WHEN new.snoozed_until IS NULL BEGIN\n{_sqlite_step('new', 1)}\nEND",
        "CREATE TRIGGER IF NOT EXISTS ticket_tally_delete AFTER DELETE ON ticket "
        f"WHEN old.snoozed_until IS NULL BEGIN\n{_sqlite_step('old', -1)}\nEND",
        # an update moves the ticket: out of its old row (if it was tallied), into its new one
        "CREATE TRIGGER IF NOT EXISTS ticket_tally_update_old AFTER UPDATE OF "
        f"{_COLS}, snoozed_until ON ticket WHEN old.snoozed_until IS NULL AND ({_changed('IS NOT')}) "
        f"BEGIN\n{_sqlite_step('old', -1)}\nEND",
        "CREATE TRIGGER IF NOT EXISTS ticket_tally_update_new AFTER UPDATE OF "
        f"{_COLS}, snoozed_until ON ticket WHEN new.snoozed_until IS NULL AND ({_changed('IS NOT')}) "
        f"BEGIN\n{_sqlite_step('new', 1)}\nEND",
    ]


def _sql_type(c: str) -> str:
    return {"assignee_id": "INTEGER", "priority_rank": "INTEGER", "spam": "BOOLEAN"}.get(
        c, "VARCHAR"
    )


# -- a bulk insert on SQLite: the tally once per batch, not once per ticket -------------------

BULK_MIN = 100  # fewer new tickets: the row trigger costs less than dropping and making it
_SAVEPOINT = "ticket_tally_bulk"


def _insert_trigger_sql() -> str:
    """The insert trigger's statement as sqlite_master keeps it (without IF NOT EXISTS)."""
    sql = next(s for s in sqlite_ddl() if " ticket_tally_insert " in s)
    return sql.replace("CREATE TRIGGER IF NOT EXISTS ", "CREATE TRIGGER ", 1)


_ON_KEY = " AND ".join(f'"{c}" IS ?' for c in TALLY_COLUMNS)
_BULK_GROUPS = (
    f"SELECT {_COLS}, count(*) FROM ticket WHERE id BETWEEN ? AND ? AND snoozed_until IS NULL "
    f"GROUP BY {_COLS} ORDER BY min(id)"
)
_BULK_ADD = (
    "UPDATE ticket_tally SET n = n + ? WHERE id = "
    f"(SELECT id FROM ticket_tally WHERE {_ON_KEY} LIMIT 1)"
)
_BULK_NEW = (
    f"INSERT INTO ticket_tally ({_COLS}, n) SELECT {', '.join('?' for _ in TALLY_COLUMNS)}, ? "
    f"WHERE NOT EXISTS (SELECT 1 FROM ticket_tally WHERE {_ON_KEY})"
)


def tally_in_bulk(raw: Any, insert: Callable[[], None], first_id: int, last_id: int) -> None:
    """SQLite: run ``insert`` (it inserts exactly the tickets ``first_id..last_id``, every id of
    the range) with the tally kept once for the batch instead of by the row trigger.

    The row trigger costs about 30 µs a ticket, most of it the statement journal a trigger
    needs. Inside the caller's write transaction and a savepoint: drop the insert trigger,
    insert, add one GROUP BY of the new range to the tally -- the same rows, in the same order
    of first appearance, as the trigger would have made -- and make the trigger again. No other
    connection sees the trigger missing (the write lock is held and nothing is committed in
    between); if anything fails, the savepoint is rolled back (the trigger, the tally and the
    batch's rows as they were) and the error raised. Outside a transaction, or if the trigger
    is not the one this reproduces, ``insert`` runs with the row trigger.
    """
    trigger = _insert_trigger_sql()
    stored = raw.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'ticket_tally_insert'"
    ).fetchone()
    if not raw.in_transaction or stored is None or stored[0] != trigger:
        insert()
        return
    raw.execute(f"SAVEPOINT {_SAVEPOINT}")
    try:
        raw.execute("DROP TRIGGER ticket_tally_insert")
        insert()
        groups = raw.execute(_BULK_GROUPS, (first_id, last_id)).fetchall()
        raw.executemany(_BULK_ADD, [(g[-1], *g[:-1]) for g in groups])
        raw.executemany(_BULK_NEW, [(*g, *g[:-1]) for g in groups])
        raw.execute(trigger)
    except BaseException:
        try:
            raw.execute(f"ROLLBACK TO {_SAVEPOINT}")
            raw.execute(f"RELEASE {_SAVEPOINT}")
        except Exception:  # the transaction is gone already (the caller rolls back)
            pass
        raise
    raw.execute(f"RELEASE {_SAVEPOINT}")


# PostgreSQL: statement-level triggers with transition tables, so a COPY of 10,000 tickets
# updates the tally once per combination, not once per ticket. The deltas are applied in key
# order (two transactions lock the rows they share in the same order). The function runs with
# its owner's rights (a team desk's agents may not write the tally themselves).
_PG_APPLY = f"""
  FOR r IN
    SELECT {_COLS}, sum(d)::int AS d FROM (
      SELECT {_COLS}, -1 AS d FROM old_rows WHERE snoozed_until IS NULL
      UNION ALL
      SELECT {_COLS}, 1 AS d FROM new_rows WHERE snoozed_until IS NULL
    ) AS moves
    GROUP BY {_COLS} HAVING sum(d) <> 0
    ORDER BY {_COLS}
  LOOP
    UPDATE ticket_tally SET n = n + r.d WHERE id = (
      SELECT id FROM ticket_tally WHERE {_match("r", "IS NOT DISTINCT FROM")} LIMIT 1);
    IF NOT FOUND THEN
      INSERT INTO ticket_tally ({_COLS}, n) VALUES ({", ".join(f'r."{c}"' for c in TALLY_COLUMNS)}, r.d);
    END IF;
  END LOOP;
  RETURN NULL;
"""


def postgres_ddl() -> list[str]:
    cols = ",\n".join(f'  "{c}" {_sql_type(c)}' for c in TALLY_COLUMNS)
    sd = "SECURITY DEFINER SET search_path = pg_catalog, public"
    empty = f"SELECT {_COLS}, snoozed_until FROM ticket WHERE false"
    out = [
        f"CREATE TABLE IF NOT EXISTS ticket_tally (\n  id BIGSERIAL PRIMARY KEY,\n{cols},\n"
        "  n INTEGER NOT NULL\n)",
        f"CREATE INDEX IF NOT EXISTS ix_ticket_tally_key ON ticket_tally ({_COLS})",
    ]
    for name, old, new in (
        ("insert", empty, "new_tally"),
        ("update", "old_tally", "new_tally"),
        ("delete", "old_tally", empty),
    ):
        old_src = old if old.startswith("SELECT") else f"SELECT * FROM {old}"
        new_src = new if new.startswith("SELECT") else f"SELECT * FROM {new}"
        body = _PG_APPLY.replace("old_rows", f"({old_src}) AS o").replace(
            "new_rows", f"({new_src}) AS nw"
        )
        out.append(
            f"CREATE OR REPLACE FUNCTION ticket_tally_{name}() RETURNS trigger "
            f"LANGUAGE plpgsql {sd} AS $$\nDECLARE r record;\nBEGIN\n{body}\nEND\n$$"
        )
        refs = {
            "insert": "NEW TABLE AS new_tally",
            "update": "OLD TABLE AS old_tally NEW TABLE AS new_tally",
            "delete": "OLD TABLE AS old_tally",
        }[name]
        out.append(f"DROP TRIGGER IF EXISTS ticket_tally_{name} ON ticket")
        out.append(
            f"CREATE TRIGGER ticket_tally_{name} AFTER {name.upper()} ON ticket "
            f"REFERENCING {refs} FOR EACH STATEMENT EXECUTE FUNCTION ticket_tally_{name}()"
        )
    return out


def rebuild_sql() -> list[str]:
    """Count the tally again from the tickets (the migration's first fill; a repair)."""
    return [
        "DELETE FROM ticket_tally",
        f"INSERT INTO ticket_tally ({_COLS}, n) SELECT {_COLS}, count(*) FROM ticket "
        f"WHERE snoozed_until IS NULL GROUP BY {_COLS}",
    ]


def ddl(dialect: str) -> list[str]:
    return postgres_ddl() if dialect == "postgresql" else sqlite_ddl()


def drop_ddl(dialect: str) -> list[str]:
    if dialect == "postgresql":
        out = []
        for name in ("insert", "update", "delete"):
            out.append(f"DROP TRIGGER IF EXISTS ticket_tally_{name} ON ticket")
            out.append(f"DROP FUNCTION IF EXISTS ticket_tally_{name}()")
        return [*out, "DROP TABLE IF EXISTS ticket_tally"]
    names = ("insert", "delete", "update_old", "update_new")
    return [
        *[f"DROP TRIGGER IF EXISTS ticket_tally_{n}" for n in names],
        "DROP TABLE IF EXISTS ticket_tally",
    ]
