"""The full-text index: one table of documents over tickets, messages, customers and KB articles.

Text is indexed *stemmed*: lower-cased, ё folded to е, split into letter/digit tokens and each
token replaced by its Snowball stem (Russian for Cyrillic tokens, English otherwise). A query is
stemmed the same way, so принтер finds принтера and принтеры, printer finds printers. Snippets and
highlights are built in Python from the original text (``highlight``), so the index keeps only the
stemmed copy.

Every document has one integer key, ``rowid = kind << 48 | ref_id``: a document is replaced or
removed by its key alone, and each kind is one contiguous rowid range, which the index seeks
(``rowid BETWEEN``) instead of filtering match by match. A message document carries no ticket id:
the ticket is looked up in ``message`` at query time, so moving a message between tickets needs no
re-indexing.

Backends (chosen by the executing dialect, see ``Match``):

* SQLite: an FTS5 virtual table ``search_doc(title, body, extra)`` ranked with bm25.
* PostgreSQL: a table ``search_doc(rowid, title, body, extra, tsv)`` with a generated tsvector
  (``simple`` configuration: the text is already stemmed) and a GIN index, ranked with ts_rank.

Both are created by migration 0002. (Snippets are made in ``search/highlight.py``.) Queries are
built from ``Term`` lists and rendered to the backend's own syntax by ``store.fts`` (free of
SQLAlchemy, re-exported here) from tokens that contain only letters and digits, so nothing a person types
reaches the match syntax unquoted.

Long because: the two backends' schema, query rendering and writes share one document-key
layout and one ``Term`` type, and every caller reaches them through this one module.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement

from supportdesk.store import fts
from supportdesk.store.stems import _TOKEN as _TOKEN
from supportdesk.store.stems import stem_text

# the query builder lives in store.fts (no SQLAlchemy); callers reach it through here too
KIND_CUSTOMER = fts.KIND_CUSTOMER
KIND_KB = fts.KIND_KB
KIND_MESSAGE = fts.KIND_MESSAGE
KIND_SHIFT = fts.KIND_SHIFT
KIND_TICKET = fts.KIND_TICKET
MAX_TERMS = fts.MAX_TERMS
REF_MASK = fts.REF_MASK
SQLITE_WEIGHTS = fts.SQLITE_WEIGHTS
TABLE = fts.TABLE
Parsed = fts.Parsed
SearchSyntaxError = fts.SearchSyntaxError
Term = fts.Term
check_size = fts.check_size
doc_key = fts.doc_key
fts5_term = fts.fts5_term
make_term = fts.make_term
ref_from_key = fts.ref_from_key
render = fts.render
tsquery_term = fts.tsquery_term
UPSERT_CHUNK = 5000  # documents per PostgreSQL upsert statement

SQLITE_DDL = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {TABLE} USING fts5("
    "title, body, extra, tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3')",
    # deletes keep the index consistent whoever deletes (pure SQL: works from any client)
    f"CREATE TRIGGER IF NOT EXISTS search_ticket_ad AFTER DELETE ON ticket BEGIN "
    f"DELETE FROM {TABLE} WHERE rowid = old.id + {doc_key(KIND_TICKET, 0)}; END",
    f"CREATE TRIGGER IF NOT EXISTS search_message_ad AFTER DELETE ON message BEGIN "
    f"DELETE FROM {TABLE} WHERE rowid = old.id + {doc_key(KIND_MESSAGE, 0)}; END",
    f"CREATE TRIGGER IF NOT EXISTS search_customer_ad AFTER DELETE ON customer BEGIN "
    f"DELETE FROM {TABLE} WHERE rowid = old.id + {doc_key(KIND_CUSTOMER, 0)}; END",
    f"CREATE TRIGGER IF NOT EXISTS search_kb_ad AFTER DELETE ON kb_article BEGIN "
    f"DELETE FROM {TABLE} WHERE rowid = old.id + {doc_key(KIND_KB, 0)}; END",
)
SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS search_ticket_ad",
    "DROP TRIGGER IF EXISTS search_message_ad",
    "DROP TRIGGER IF EXISTS search_customer_ad",
    "DROP TRIGGER IF EXISTS search_kb_ad",
    f"DROP TABLE IF EXISTS {TABLE}",
)

_PG_TRIGGER_FN = f"""
CREATE OR REPLACE FUNCTION search_doc_forget() RETURNS trigger AS $$
BEGIN
  DELETE FROM {TABLE} WHERE rowid = OLD.id + (TG_ARGV[0]::bigint << {KIND_SHIFT});
  RETURN OLD;
END $$ LANGUAGE plpgsql
"""
POSTGRES_DDL = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    "rowid BIGINT PRIMARY KEY, title TEXT NOT NULL DEFAULT '', body TEXT NOT NULL DEFAULT '', "
    "extra TEXT NOT NULL DEFAULT '', tsv tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('simple', title), 'A') || setweight(to_tsvector('simple', extra), 'B')"
    " || setweight(to_tsvector('simple', body), 'C')) STORED)",
    f"CREATE INDEX IF NOT EXISTS ix_search_doc_tsv ON {TABLE} USING GIN (tsv)",
    _PG_TRIGGER_FN,
    *(
        f"CREATE TRIGGER search_{name}_ad AFTER DELETE ON {name} FOR EACH ROW "
        f"EXECUTE FUNCTION search_doc_forget({kind})"
        for name, kind in (
            ("ticket", KIND_TICKET),
            ("message", KIND_MESSAGE),
            ("customer", KIND_CUSTOMER),
            ("kb_article", KIND_KB),
        )
    ),
)
POSTGRES_DROP = (
    "DROP TRIGGER IF EXISTS search_ticket_ad ON ticket",
    "DROP TRIGGER IF EXISTS search_message_ad ON message",
    "DROP TRIGGER IF EXISTS search_customer_ad ON customer",
    "DROP TRIGGER IF EXISTS search_kb_article_ad ON kb_article",
    "DROP FUNCTION IF EXISTS search_doc_forget()",
    f"DROP TABLE IF EXISTS {TABLE}",
)


def create_schema(conn: Any) -> None:
    """Create the index table (and delete triggers) for the connection's dialect."""
    name = _dialect(conn)
    for stmt in SQLITE_DDL if name == "sqlite" else POSTGRES_DDL if name == "postgresql" else ():
        conn.execute(sa.text(stmt))


def drop_schema(conn: Any) -> None:
    name = _dialect(conn)
    for stmt in SQLITE_DROP if name == "sqlite" else POSTGRES_DROP if name == "postgresql" else ():
        conn.execute(sa.text(stmt))


# --------------------------------------------------------------------------- the query language's words

# The search's queries are text (``store.hits``), shared with the quick path of the command
# line; the query language's free words reach a SQLAlchemy statement through this clause.


class TicketsMatching(ColumnElement[Any]):
    """``ticket.id`` is a ticket matching every term (anywhere: subject, messages, customer,
    tags): ``store.hits.tickets_with_all``, rendered for the dialect that executes it."""

    inherit_cache = False  # the rendered text depends on the dialect and the terms
    # not Boolean: SQLite would get "... = 1"
    type = sa.types.NullType()  # type: ignore[assignment]

    def __init__(self, terms: Sequence[Term]):
        self.terms = list(terms)


@compiles(TicketsMatching)
def _tickets_matching(element: TicketsMatching, compiler: Any, **kw: Any) -> str:
    from supportdesk.store import hits

    # parameter names of their own: a statement may hold several of these clauses
    s = hits.Sql(compiler.dialect.name, prefix=f"tm{len(compiler.binds)}_")
    sql = hits.tickets_with_all(s, element.terms)
    return str(compiler.process(sa.text(f"(ticket.id IN ({sql}))").bindparams(**s.params), **kw))


# --------------------------------------------------------------------------- writing


@dataclass
class Doc:
    kind: int
    ref_id: int
    title: str = ""
    body: str = ""
    extra: str = ""
    # (title, body, extra) stemmed already (by the import's parser processes); None: stem here
    stemmed: tuple[str | None, str | None, str | None] | None = None

    @property
    def key(self) -> int:
        return doc_key(self.kind, self.ref_id)

    def row(self) -> tuple[int, str, str, str]:
        """(key, stemmed title, stemmed body, stemmed extra) as the index stores them."""
        t, b, e = self.stemmed or (None, None, None)
        return (
            self.key,
            stem_text(self.title) if t is None else t,
            stem_text(self.body) if b is None else b,
            stem_text(self.extra) if e is None else e,
        )


def _dialect(conn: Any) -> str:
    bind = conn.get_bind() if hasattr(conn, "get_bind") else conn
    return str(bind.dialect.name)


def available(conn: Any) -> bool:
    return _dialect(conn) in ("sqlite", "postgresql")


def upsert(conn: Any, docs: Sequence[Doc], *, new: bool = False) -> None:
    """Add or replace documents (inside the caller's transaction).

    One statement per batch that replaces by key (FTS5's ``INSERT OR REPLACE`` drops the old
    row's terms; PostgreSQL's ``ON CONFLICT``), so a batch of new documents costs no lookups.
    ``new``: the keys are expected to be new (an ingest batch's rows): on PostgreSQL they go
    through one COPY first (a third less of the server's time than the upsert), replaced with
    the upsert only when a key turns out to exist.
    """
    if not docs or not available(conn):
        return
    # in key order: FTS5 flushes its pending terms to a new segment whenever a key is lower
    # than the one before (tickets and messages interleaved cost ten times as much); the same
    # document twice: the last one wins
    rows = sorted({d.key: d.row() for d in docs}.values())
    if _dialect(conn) == "sqlite":
        raw = getattr(getattr(conn, "connection", None), "driver_connection", None)
        if raw is not None:
            raw.executemany(
                f"INSERT OR REPLACE INTO {TABLE} (rowid, title, body, extra) VALUES (?, ?, ?, ?)",
                rows,
            )
            return
        stmt = f"INSERT OR REPLACE INTO {TABLE} (rowid, title, body, extra) VALUES (:r, :t, :b, :e)"
    else:
        if new and len(rows) >= COPY_MIN_DOCS and _pg_copy_new(conn, rows):
            return
        # one statement over four arrays: an executemany runs (and plans) one INSERT per row,
        # which was a third of a PostgreSQL import's time in the database
        stmt = (
            f"INSERT INTO {TABLE} (rowid, title, body, extra) "
            "SELECT * FROM unnest(CAST(:r AS bigint[]), CAST(:t AS text[]), "
            "CAST(:b AS text[]), CAST(:e AS text[])) "
            "ON CONFLICT (rowid) DO UPDATE SET title = EXCLUDED.title, body = EXCLUDED.body, "
            "extra = EXCLUDED.extra"
        )
        for i in range(0, len(rows), UPSERT_CHUNK):
            part = rows[i : i + UPSERT_CHUNK]
            columns = [[r[c] for r in part] for c in range(4)]
            conn.execute(sa.text(stmt), dict(zip("rtbe", columns, strict=True)))
        return
    conn.execute(sa.text(stmt), [{"r": r[0], "t": r[1], "b": r[2], "e": r[3]} for r in rows])


COPY_MIN_DOCS = 8  # fewer: the upsert costs less than a savepoint and a COPY


def _pg_copy_new(conn: Any, rows: Sequence[tuple[int, str, str, str]]) -> bool:
    """PostgreSQL: documents whose keys are all new (an ingest batch's new messages, tickets
    and customers) through one COPY, inside a savepoint; False, with nothing written, when a
    key is in the index already (the caller then replaces them with the upsert)."""
    import psycopg

    from supportdesk.store.bulk import copy_rows

    raw = getattr(getattr(conn, "connection", None), "driver_connection", None)
    if raw is None:
        return False
    raw.execute("SAVEPOINT search_doc_copy")
    try:
        copy_rows(conn, TABLE, ("rowid", "title", "body", "extra"), rows)
    except psycopg.errors.UniqueViolation:
        raw.execute("ROLLBACK TO SAVEPOINT search_doc_copy")
        raw.execute("RELEASE SAVEPOINT search_doc_copy")
        return False
    raw.execute("RELEASE SAVEPOINT search_doc_copy")
    return True


def insert(conn: Any, docs: Sequence[Doc]) -> None:
    """Add documents whose keys are not in the index yet (a rebuild after ``clear``, a bulk
    load of new rows): a plain insert, without the lookup of the old row that replacing costs.
    A key that is there already is an error (the database's unique key)."""
    if not docs or not available(conn):
        return
    rows = sorted(d.row() for d in docs)  # key order (see ``upsert``)
    if _dialect(conn) == "sqlite":
        conn.connection.driver_connection.executemany(
            f"INSERT INTO {TABLE} (rowid, title, body, extra) VALUES (?, ?, ?, ?)", rows
        )
        return
    from supportdesk.store.bulk import copy_rows

    copy_rows(conn, TABLE, ("rowid", "title", "body", "extra"), rows)


def delete(conn: Any, keys: Sequence[int]) -> None:
    if not keys or not available(conn):
        return
    stmt = sa.text(f"DELETE FROM {TABLE} WHERE rowid IN :keys").bindparams(
        sa.bindparam("keys", expanding=True)
    )
    for i in range(0, len(keys), 500):
        conn.execute(stmt, {"keys": list(keys[i : i + 500])})


def clear(conn: Any) -> None:
    if available(conn):
        conn.execute(sa.text(f"DELETE FROM {TABLE}"))


def count(conn: Any, kind: int | None = None) -> int:
    from supportdesk.store import hits

    return hits.count(lambda sql, params: conn.execute(sa.text(sql), params).all(), kind)


def optimize(conn: Any) -> None:
    """Merge all of the index's segments into one (SQLite; PostgreSQL needs nothing).

    It rewrites the whole index in one step: a minute at a million tickets. Bulk loads call
    ``merge_step`` between their batches instead."""
    if _dialect(conn) == "sqlite":
        conn.execute(sa.text(f"INSERT INTO {TABLE}({TABLE}) VALUES ('optimize')"))


MERGE_PAGES = 2000  # leaf pages one ``merge_step`` may write (about 8 MB at 4 KiB pages)


def merge_step(conn: Any, pages: int = MERGE_PAGES) -> None:
    """Some bounded work on merging the index's segments (SQLite's FTS5 ``merge``), so a bulk
    load that commits in batches keeps few segments without one merge of everything at the end.

    The segments a batch writes are merged by FTS5's own ``automerge`` as they pile up (4 at a
    level); this step merges further, at most ``pages`` pages. PostgreSQL: nothing to do."""
    if _dialect(conn) == "sqlite":
        conn.connection.driver_connection.execute(
            f"INSERT INTO {TABLE}({TABLE}, rank) VALUES ('merge', ?)", (int(pages),)
        )


MERGE_ALL_PAGES = 20_000  # leaf pages per transaction of ``merge_all`` (about 80 MB)


def merge_all(db: Any, pages: int = MERGE_ALL_PAGES) -> int:
    """Merge all of the index's segments into one, ``pages`` leaf pages per write transaction
    (SQLite's FTS5 ``merge`` with a negative count; PostgreSQL: nothing to do). Returns the
    number of transactions.

    For a bulk load that wrote a few large segments without merging them (the demo's): one
    merge of 13 segments at a million tickets cost ~3 CPU-s, where merging them 16 at a time
    while they were written cost ~18 s and one merge of 53 smaller ones ~28 s (FTS5's merge
    reads its inputs through ``pread``; the system time grows with the number of inputs)."""
    if not db.is_sqlite:
        return 0
    steps = 0
    while True:
        with db.write() as s:
            raw = s.connection().connection.driver_connection
            before = raw.total_changes
            raw.execute(f"INSERT INTO {TABLE}({TABLE}, rank) VALUES ('merge', ?)", (-int(pages),))
            done = raw.total_changes - before < 2  # FTS5's sign that there was nothing to merge
        steps += 1
        if done:
            return steps


# FTS5's merge policy while a bulk load writes (``bulk_merge_policy``), and FTS5's defaults
# (https://www.sqlite.org/fts5.html, "FTS5 configuration options")
BULK_POLICY = {"hashsize": 64 << 20, "automerge": 16, "usermerge": 16, "crisismerge": 64}
FTS5_DEFAULTS = {"hashsize": 1 << 20, "automerge": 4, "usermerge": 4, "crisismerge": 16}


def fts_options(conn: Any) -> dict[str, Any]:
    """The options stored in the index's ``%_config`` table (SQLite; absent ones are at FTS5's
    default)."""
    rows = conn.execute(sa.text(f"SELECT k, v FROM {TABLE}_config WHERE k != 'version'"))
    return {str(k): v for k, v in rows}


def _set_options(conn: Any, options: dict[str, Any]) -> None:
    for name, value in options.items():
        conn.execute(
            sa.text(f"INSERT INTO {TABLE}({TABLE}, rank) VALUES (:k, :v)"),
            {"k": name, "v": value},
        )


@contextmanager
def bulk_merge_policy(db: Any, policy: dict[str, int] | None = None) -> Iterator[None]:
    """FTS5 options for a bulk load of many transactions (SQLite; PostgreSQL: nothing).

    With the defaults every transaction's segment joins a level that is merged four at a
    time, and each page written pays merge work in proportion to the number of levels (5 at a
    million tickets): the cost per ticket grew with the index. A 64 MiB pending-terms hash
    (one segment per batch, not several) and merging 16 segments at a time keep the levels at
    log16 of the batch count, the merging incremental and the cost per ticket flat.

    The options are stored in the index (``%_config``), so they are put back as they were
    afterwards, also when the load fails: the desk's later writes run with the defaults."""
    if not db.is_sqlite:
        yield
        return
    policy = BULK_POLICY if policy is None else policy
    with db.write() as s:
        conn = s.connection()
        before = fts_options(conn)
        _set_options(conn, policy)
    try:
        yield
    finally:
        with db.write() as s:
            conn = s.connection()
            _set_options(conn, {k: before.get(k, FTS5_DEFAULTS[k]) for k in policy})
            # an option that was not stored before is not stored after (FTS5 reads its default)
            absent = [k for k in policy if k not in before]
            if absent:
                conn.execute(
                    sa.text(f"DELETE FROM {TABLE}_config WHERE k IN :k").bindparams(
                        sa.bindparam("k", expanding=True)
                    ),
                    {"k": absent},
                )


# --------------------------------------------------------------------------- rebuild from tables


def _chunks(conn: Any, sql: str, size: int = 5000) -> Iterable[list[Any]]:
    """Rows of ``sql`` (which must select ``id`` first) in id order, in chunks."""
    last = 0
    while True:
        rows = list(conn.execute(sa.text(sql), {"last": last, "n": size}).all())
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def rebuild_all(conn: Any) -> int:
    """Re-create every document from the tables; returns how many were written.

    After ``clear`` every key is new: plain inserts in key order (each kind in id order). No
    ``optimize`` at the end: FTS5's automerge keeps the segments few as they are written."""
    if not available(conn):
        return 0
    clear(conn)
    n = 0
    for rows in _chunks(
        conn, "SELECT id, subject FROM ticket WHERE id > :last ORDER BY id LIMIT :n"
    ):
        docs = [Doc(KIND_TICKET, r[0], title=r[1] or "") for r in rows]
        insert(conn, docs)
        n += len(docs)
    for rows in _chunks(
        conn, "SELECT id, subject, text FROM message WHERE id > :last ORDER BY id LIMIT :n"
    ):
        names = _attachment_names(conn, [r[0] for r in rows])
        docs = [
            Doc(KIND_MESSAGE, r[0], title=r[1] or "", body=r[2] or "", extra=names.get(r[0], ""))
            for r in rows
        ]
        insert(conn, docs)
        n += len(docs)
    for rows in _chunks(
        conn,
        "SELECT id, name, company, notes FROM customer WHERE id > :last ORDER BY id LIMIT :n",
    ):
        idents = _identities(conn, [r[0] for r in rows])
        docs = [
            Doc(KIND_CUSTOMER, r[0], title=f"{r[1] or ''} {r[2] or ''}", body=r[3] or "",
                extra=idents.get(r[0], ""))
            for r in rows
        ]  # fmt: skip
        insert(conn, docs)
        n += len(docs)
    for rows in _chunks(
        conn,
        "SELECT id, title, body, tags, slug FROM kb_article WHERE id > :last ORDER BY id LIMIT :n",
    ):
        docs = [kb_doc(r[0], r[1], r[2], r[3], r[4]) for r in rows]
        insert(conn, docs)
        n += len(docs)
    merge_step(conn)
    return n


def _in_list(conn: Any, sql: str, ids: list[int]) -> list[Any]:
    stmt = sa.text(sql).bindparams(sa.bindparam("ids", expanding=True))
    return list(conn.execute(stmt, {"ids": ids}).all()) if ids else []


def _attachment_names(conn: Any, message_ids: list[int]) -> dict[int, str]:
    out: dict[int, list[str]] = {}
    for mid, name in _in_list(
        conn, "SELECT message_id, filename FROM attachment WHERE message_id IN :ids", message_ids
    ):
        out.setdefault(mid, []).append(name or "")
    return {k: " ".join(v) for k, v in out.items()}


def _identities(conn: Any, customer_ids: list[int]) -> dict[int, str]:
    out: dict[int, list[str]] = {}
    for cid, address, display in _in_list(
        conn, "SELECT customer_id, address, display FROM identity WHERE customer_id IN :ids",
        customer_ids,
    ):  # fmt: skip
        out.setdefault(cid, []).extend([address or "", display or ""])
    return {k: " ".join(v) for k, v in out.items()}


def kb_doc(article_id: int, title: str, body: str, tags: str, slug: str) -> Doc:
    return Doc(KIND_KB, article_id, title=title or "", body=body or "",
               extra=f"{(tags or '').replace(',', ' ')} {slug or ''}")  # fmt: skip
