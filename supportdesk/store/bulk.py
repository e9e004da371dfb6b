"""Bulk writes for the ingest of a batch: dialect-specific, so they live in the store.

* ``allocate_ids`` gives new rows their ids before anything is inserted (SQLite: max(id)+1
  under the writer's lock; PostgreSQL: the table's sequence), so a ticket is inserted once
  with its final counters;
* ``write_rows`` inserts rows that have their ids: on SQLite one DB-API ``executemany`` with
  SQLAlchemy's own bind processors (the same stored formats, see ``sqlite_utc_text``), a
  third of the time of going through the SQL compiler per row; on PostgreSQL one ``COPY ...
  FROM STDIN`` (psycopg's ``cursor.copy``), times as naive UTC like ``UTCDateTime`` binds them.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from supportdesk.store import tally
from supportdesk.store.models import UTCDateTime, sqlite_utc_text

CHUNK = 500


def chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def in_batches(conn: Any, column: Any, values: Iterable[Any]) -> Iterable[Any]:
    """``column IN values`` as few conditions as the backend allows, one query each: on
    PostgreSQL a single ``= ANY(array)`` whatever the count (one round trip, and one plan for
    any length, where a 500-item IN list is parsed and planned item by item); elsewhere IN
    lists of ``CHUNK``."""
    items = list(values)
    if not items:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        yield column == sa.any_(sa.bindparam(None, items, type_=ARRAY(column.type)))
        return
    for chunk in chunks(items):
        yield column.in_(chunk)


class Row:
    """A new row as a plain object: what SQLModel would hold, without its per-attribute cost.

    Priority rules and SLA clocks read and set the same attribute names on it as on a model
    instance; the batch inserts it with one bulk statement.
    """

    id: int | None

    def __init__(self, model: Any, **values: Any) -> None:
        fixed, factories = _defaults(model)
        d = self.__dict__
        d.update(fixed)
        for name, factory in factories:
            if name not in values:
                d[name] = factory()
        d.update(values)

    def values(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "id"}


_DEFAULTS: dict[Any, tuple[dict[str, Any], list[tuple[str, Any]]]] = {}


def _defaults(model: Any) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """A model's plain defaults, and the fields whose default is made by a function."""
    got = _DEFAULTS.get(model)
    if got is None:
        fixed: dict[str, Any] = {}
        factories: list[tuple[str, Any]] = []
        for name, info in model.model_fields.items():
            if info.default_factory is not None:
                factories.append((name, info.default_factory))
            else:
                fixed[name] = None if info.default is ... else info.default
        got = _DEFAULTS[model] = (fixed, factories)
    return got


def sequences(conn: Any, models: Sequence[Any]) -> dict[str, str]:
    """PostgreSQL: each table's id sequence, in one round trip (an ingest batch asks once for
    all the tables it allocates ids in, not once per table)."""
    names = [m.__table__.name for m in models]
    got = conn.execute(
        sa.text("SELECT t, pg_get_serial_sequence(t, 'id') FROM unnest(CAST(:t AS text[])) t"),
        {"t": names},
    )
    return {str(t): str(seq) for t, seq in got if seq is not None}


def allocate_ids(
    conn: Any, model: Any, rows: Sequence[Any], seqs: dict[str, str] | None = None
) -> bool:
    """Give each new row its id before anything is inserted; False where the backend can't.

    On SQLite the writer holds the database lock (BEGIN IMMEDIATE), so max(id)+1... is safe;
    on PostgreSQL the ids come from the table's sequence (its name from ``seqs`` when the
    caller looked it up already, see ``sequences``; else looked up here).
    """
    if not rows:
        return True
    table = model.__table__
    dialect = conn.dialect.name
    if dialect == "sqlite":
        start = (conn.execute(sa.select(sa.func.max(table.c.id))).scalar() or 0) + 1
        ids: Iterable[int] = range(start, start + len(rows))
    elif dialect == "postgresql":
        seq = (seqs if seqs is not None else {}).get(table.name)
        if seq is None:
            seq = sequences(conn, [model]).get(table.name)
            if seq is None:
                return False
            if seqs is not None:
                seqs[table.name] = seq
        # the name is bound once as a regclass (resolved when the statement is bound, not per
        # row as a cast of a column would be)
        ids = list(
            conn.execute(
                sa.text("SELECT nextval(CAST(:s AS regclass)) FROM generate_series(1, :n)"),
                {"s": seq, "n": len(rows)},
            ).scalars()
        )
    else:
        return False
    for r, new_id in zip(rows, ids, strict=True):
        r.id = new_id
    return True


def write_rows(conn: Any, model: Any, rows: Sequence[Any]) -> None:
    """Insert rows (``Row`` objects or dicts) that already have their ids, or need none."""
    if not rows:
        return
    table = model.__table__
    if conn.dialect.name == "sqlite":
        _sqlite_executemany(conn, table, rows)
        return
    if conn.dialect.name == "postgresql":
        _pg_copy(conn, table, rows)
        return
    for chunk in chunks(rows):
        conn.execute(sa.insert(table), [r if isinstance(r, dict) else r.__dict__ for r in chunk])


def insert_rows(conn: Any, model: Any, rows: list[Row], seqs: dict[str, str] | None = None) -> None:
    """Insert new rows and give each its id (allocated up front where the backend allows)."""
    if not rows:
        return
    if allocate_ids(conn, model, rows, seqs):
        write_rows(conn, model, rows)
        return
    table = model.__table__
    for chunk in chunks(rows):  # elsewhere: ask for the ids back (row by row, slower)
        stmt = sa.insert(table).returning(table.c.id, sort_by_parameter_order=True)
        got = conn.execute(stmt, [r.values() for r in chunk]).scalars().all()
        for r, new_id in zip(chunk, got, strict=True):
            r.id = new_id


_INSERTS: dict[
    tuple[str, frozenset[str] | None], tuple[str, list[str], Any, list[tuple[int, Any]]]
] = {}
# time -> its stored text, kept across calls: a message's date is in its ticket's, its own and
# its event's rows (equal times, naive or aware, have the same text)
_TIMES: dict[Any, str | None] = {}
TIMES_KEPT = 20_000  # a batch of 2,500 messages has ~10,000 distinct times
NULL_COLUMNS_MIN = 50  # rows from which columns NULL in every row are left out of the INSERT


def _sqlite_executemany(conn: Any, table: Any, rows: Sequence[Any]) -> None:
    """One DB-API executemany with SQLAlchemy's own bind processors (same stored formats),
    without building a parameter dictionary per row through the SQL compiler.

    Dict rows name only the columns they set (an event has no id: SQLite assigns it). The
    values are picked in one C call; only the columns that need converting (times) are touched
    again, and only when they hold a value. From ``NULL_COLUMNS_MIN`` rows, the columns that
    are NULL in every row are left out of the statement when the table gives them no default
    (so they are NULL all the same): binding a None costs the sqlite3 module an adapter look-up
    each (about 13 per imported message, ~5% of the storing process's instructions).
    """
    first = rows[0]
    only = frozenset(first) if isinstance(first, dict) else None
    key = (table.name, only)
    plan = _INSERTS.get(key)
    if plan is None:
        cols = [c for c in table.columns if only is None or c.name in only]
        names = ", ".join(f'"{c.name}"' for c in cols)
        sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({", ".join("?" for _ in cols)})'
        column_names = [c.name for c in cols]
        pick = (
            operator.itemgetter(*column_names)
            if len(column_names) > 1
            else lambda d: (d[column_names[0]],)
        )
        convert = [
            # sqlite3 stores a bool as 0/1 itself, but only after an adapter look-up per value
            (i, _bool_int if isinstance(c.type, sa.Boolean) else proc)
            for i, c in enumerate(cols)
            if (proc := _bind_processor(c, conn.dialect)) is not None
        ]
        plan = (sql, column_names, pick, convert)
        _INSERTS[key] = plan
    sql, column_names, pick, convert = plan
    data = []
    done = _TIMES  # a batch repeats its times (now, each message's date): once each
    if len(done) > TIMES_KEPT:
        done.clear()
    for r in rows:
        vals = pick(r if isinstance(r, dict) else r.__dict__)
        if convert:
            vals = list(vals)
            for i, proc in convert:
                v = vals[i]
                if v is None:
                    continue
                if proc is sqlite_utc_text:
                    got = done.get(v)
                    if got is None:
                        got = done[v] = proc(v)
                    vals[i] = got
                else:
                    vals[i] = proc(v)
        data.append(vals)
    raw = conn.connection.driver_connection
    if len(data) >= NULL_COLUMNS_MIN:
        sql, data = _without_null_columns(raw, table.name, column_names, sql, data)
    if table.name == "ticket" and len(rows) >= tally.BULK_MIN and _gap_free(rows):
        first = (rows[0] if isinstance(rows[0], dict) else rows[0].__dict__)["id"]
        tally.tally_in_bulk(raw, lambda: raw.executemany(sql, data), first, first + len(rows) - 1)
        return
    raw.executemany(sql, data)


def _bool_int(value: Any) -> Any:
    """A bool as the 0/1 the sqlite3 module would bind for it; anything else as it is."""
    return int(value) if value.__class__ is bool else value


def _without_null_columns(
    raw: Any, table: str, names: list[str], sql: str, data: list[Any]
) -> tuple[str, list[Any]]:
    """(statement, rows) without the columns that are None in every row and that the table
    gives no default (``PRAGMA table_info``): left out, they are NULL as if bound."""
    columns = list(zip(*data, strict=True))
    n = len(data)
    # (the ends first: comparing every value with None costs more than it saves)
    empty = {
        i for i, c in enumerate(columns) if c[0] is None and c[-1] is None and c.count(None) == n
    }
    if not empty:
        return sql, data
    nulls = {
        name
        for _cid, name, _type, _notnull, default, _pk in raw.execute(
            f'PRAGMA table_info("{table}")'
        )
        if default is None or str(default).upper() == "NULL"
    }
    keep = [i for i in range(len(names)) if not (i in empty and names[i] in nulls)]
    if len(keep) == len(names) or not keep:
        return sql, data
    kept = ", ".join(f'"{names[i]}"' for i in keep)
    sql = f'INSERT INTO "{table}" ({kept}) VALUES ({", ".join("?" for _ in keep)})'
    return sql, list(zip(*(columns[i] for i in keep), strict=True))


def _gap_free(rows: Sequence[Any]) -> bool:
    """The rows have the ids n, n+1, ... in order (ids a bulk load allocated)."""
    ids = [(r if isinstance(r, dict) else r.__dict__).get("id") for r in rows]
    first = ids[0]
    return isinstance(first, int) and ids == list(range(first, first + len(ids)))


def _bind_processor(column: Any, dialect: Any) -> Any:
    """The column's processor as SQLAlchemy would apply it for this dialect."""
    if isinstance(column.type, UTCDateTime) and dialect.name == "sqlite":
        return sqlite_utc_text
    return column.type.dialect_impl(dialect).bind_processor(dialect)


COPY_MIN_ROWS = 8  # fewer rows: one multi-row INSERT costs less than opening a COPY


def _pg_copy(conn: Any, table: Any, rows: Sequence[Any]) -> None:
    """PostgreSQL: the rows through one ``COPY ... FROM STDIN``, in the caller's transaction.

    Dict rows name only the columns they set (an event has no id: its sequence gives it);
    times go in as naive UTC, as ``UTCDateTime`` binds them."""
    if len(rows) < COPY_MIN_ROWS:
        conn.execute(sa.insert(table), [r if isinstance(r, dict) else r.__dict__ for r in rows])
        return
    first = rows[0]
    only = frozenset(first) if isinstance(first, dict) else None
    cols = [c for c in table.columns if only is None or c.name in only]
    names = [c.name for c in cols]
    pick = operator.itemgetter(*names) if len(names) > 1 else lambda d: (d[names[0]],)
    times = [i for i, c in enumerate(cols) if isinstance(c.type, UTCDateTime)]
    data = []
    for r in rows:
        vals = pick(r if isinstance(r, dict) else r.__dict__)
        if times:
            vals = list(vals)
            for i in times:
                vals[i] = pg_utc(vals[i])
        data.append(vals)
    copy_rows(conn, table.name, names, data)


def pg_utc(value: datetime | None) -> datetime | None:
    """A time as ``UTCDateTime`` binds it on PostgreSQL: naive UTC."""
    if value is None or value.tzinfo is None:
        return value
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None)


def copy_rows(conn: Any, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """PostgreSQL: value tuples into ``table`` (its ``columns``, in order) through one COPY."""
    names = ", ".join(f'"{c}"' for c in columns)
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)


# --------------------------------------------------------------------------- bulk loads


def secondary_indexes(conn: Any, tables: Sequence[str]) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the tables' indexes that no constraint owns: the ones a
    bulk load may drop and build again afterwards (primary keys and UNIQUE constraints stay)."""
    if conn.dialect.name == "sqlite":
        got = conn.execute(
            sa.text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                "AND tbl_name IN :t ORDER BY name"
            ).bindparams(sa.bindparam("t", expanding=True)),
            {"t": list(tables)},
        )
    elif conn.dialect.name == "postgresql":
        got = conn.execute(
            sa.text(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i "
                "WHERE i.schemaname = current_schema() AND i.tablename IN :t AND NOT EXISTS ("
                "SELECT 1 FROM pg_constraint c WHERE c.conindid = "
                "(quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))::regclass) "
                "ORDER BY i.indexname"
            ).bindparams(sa.bindparam("t", expanding=True)),
            {"t": list(tables)},
        )
    else:
        return []
    return [(str(name), str(sql)) for name, sql in got]


def drop_indexes(conn: Any, indexes: Sequence[tuple[str, str]]) -> None:
    for name, _sql in indexes:
        conn.execute(sa.text(f'DROP INDEX "{name}"'))


def create_indexes(conn: Any, indexes: Sequence[tuple[str, str]]) -> None:
    """Build indexes again from their saved statements (one sort each, not a B-tree insert per
    row in random order)."""
    for _name, sql in indexes:
        conn.execute(sa.text(sql))


def reset_sequences(conn: Any, models: Sequence[Any]) -> None:
    """PostgreSQL: move each table's id sequence past the ids a bulk load wrote itself."""
    if conn.dialect.name != "postgresql":
        return
    for model in models:
        name = model.__table__.name
        conn.execute(
            sa.text(
                f"SELECT setval(pg_get_serial_sequence(:t, 'id'), "
                f'COALESCE((SELECT max(id) FROM "{name}"), 0) + 1, false)'
            ),
            {"t": name},
        )
