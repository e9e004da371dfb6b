"""The search's SQL: which documents of the full-text index (``store.search``) match a search,
how they rank, and the rows a hit is shown with, for SQLite's FTS5 and PostgreSQL's tsvector.

Written once and run two ways, like ``store.reads``: the full path runs it in a SQLAlchemy
session (``store.db.session_run``), the quick path of the command line on a plain DB-API
connection (``store.quick``) without importing SQLAlchemy, pydantic or the model classes. The
match expression is ``store.fts``'s, built from tokens of letters and digits only and always
bound as a parameter: nothing a person types reaches the SQL or the match syntax unquoted.

The query language's filter terms (``status:open`` ...) are the full path's: its caller passes
them as a ``Cond``, a condition on the row ``ticket`` (SQL text and its parameters, see
``search.query.ticket_cond``), which the ticket and message queries add to their WHERE.

A document's key is ``kind << 48 | ref_id`` (``store.fts``): each kind is one rowid range, which
the index seeks. Scores are lower-is-better on both backends (bm25; minus ts_rank).

No SQLAlchemy here: the quick path loads this.

Long because: every query of the search (four kinds of hits, the free-word ticket filter of the
query language, the rows of the hits) lives here once for both backends.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

from supportdesk.store import fts
from supportdesk.store.reads import CHUNK, Run

T = fts.TABLE
MASK = fts.REF_MASK

Cond = tuple[str, dict[str, Any]]  # a condition on the row ``ticket``: SQL text, parameters


class Sql:
    """The parameters of one statement being written: each value bound under a fresh name."""

    def __init__(self, dialect: str, prefix: str = "h_"):
        if dialect not in ("sqlite", "postgresql"):
            raise fts.SearchSyntaxError(
                f"full-text search is not available on {dialect} (use SQLite or PostgreSQL)"
            )
        self.dialect, self.prefix = dialect, prefix
        self.params: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        name = f"{self.prefix}{len(self.params)}"
        self.params[name] = value
        return ":" + name

    def cond(self, cond: Cond) -> str:
        """A caller's condition, its parameters taken in (their names must be its own)."""
        sql, params = cond
        assert not set(params) & set(self.params), "a condition's parameter names clash"
        self.params.update(params)
        return sql


# --------------------------------------------------------------------------- pieces


def match(s: Sql, terms: Sequence[fts.Term], *, any_of: bool = False, walked: bool = False) -> str:
    """``search_doc`` matches the terms (all of them, or ``any_of``), negated ones excluded.
    ``walked`` (PostgreSQL): as the function behind ``@@``, which no index serves, so the
    documents are read by a walk of the key (the query's range and order), never a GIN bitmap."""
    expr = s.bind(fts.render(terms, s.dialect, any_of=any_of))
    if s.dialect == "postgresql":
        if walked:
            return f"ts_match_vq({T}.tsv, to_tsquery('simple', {expr}))"
        return f"{T}.tsv @@ to_tsquery('simple', {expr})"
    return f"{T} MATCH {expr}"


def score(s: Sql, terms: Sequence[fts.Term]) -> str:
    """A matching document's rank (lower is better)."""
    if s.dialect == "postgresql":
        # rank by the positive words (a negated word would zero ts_rank)
        positive = [t for t in terms if not t.negated]
        expr = s.bind(fts.render(positive, "postgresql", any_of=True))
        return f"(-ts_rank({T}.tsv, to_tsquery('simple', {expr})))"
    return f"bm25({T}, {', '.join(str(w) for w in fts.SQLITE_WEIGHTS)})"


def in_kinds(kinds: Sequence[int], rowid: str = f"{T}.rowid") -> str:
    """``rowid`` lies in the key ranges of ``kinds`` (ranges the index seeks, not a filter)."""
    ranges: list[tuple[int, int]] = []
    for k in sorted(set(kinds)):
        if ranges and ranges[-1][1] == k - 1:
            ranges[-1] = (ranges[-1][0], k)
        else:
            ranges.append((k, k))
    conds = [
        f"{rowid} >= {fts.doc_key(a, 0)} AND {rowid} <= {fts.doc_key(b, MASK)}" for a, b in ranges
    ]
    return conds[0] if len(conds) == 1 else "(" + " OR ".join(f"({c})" for c in conds) + ")"


# PostgreSQL: kinds with a GIN index of their own (migration 0015), whose predicate is
# ``(rowid >> 48) = kind``. A query for the matches of one of them says so in those words and
# not as the key range: the primary key serves the range, and the planner, taking a common word
# as half of every kind's documents (the statistics of ``tsv`` are over all of them), would walk
# the whole kind's range backwards for a word none of its documents holds.
OWN_GIN = (fts.KIND_CUSTOMER, fts.KIND_KB)


def own_gin(s: Sql, kinds: Sequence[int]) -> bool:
    """The documents of ``kinds`` are read from one kind's own GIN index (PostgreSQL)."""
    return s.dialect == "postgresql" and len(set(kinds)) == 1 and kinds[0] in OWN_GIN


def of_kinds(s: Sql, kinds: Sequence[int]) -> str:
    """A matching document is of ``kinds``: by the key range, or for a kind with its own GIN
    index on PostgreSQL by the index's predicate (literal constants, so the planner proves it)."""
    if own_gin(s, kinds):
        return f"({T}.rowid >> {fts.KIND_SHIFT}) = {int(kinds[0])}"
    return in_kinds(kinds)


def ranked_docs(
    s: Sql,
    kinds: Sequence[int],
    terms: Sequence[fts.Term],
    *,
    any_of: bool = False,
    of: str | None = None,
    walked: bool = False,
) -> str:
    """SELECT rowid, score of the documents of ``kinds`` matching ``terms`` (unordered);
    ``of``: the condition on the kind, if not ``of_kinds``'; ``walked``: see ``match``."""
    return (
        f"SELECT {T}.rowid AS rowid, {score(s, terms)} AS score FROM {T} "
        f"WHERE {match(s, terms, any_of=any_of, walked=walked)} AND {of or of_kinds(s, kinds)}"
    )


def refs_matching(s: Sql, kind: int, term: fts.Term, refs: str | None = None) -> str:
    """SELECT the ref ids (``ref_id``) of the documents of ``kind`` matching ``term``; ``refs``:
    a SELECT of the only ref ids to look at (as ``ref_id``), each document read by its key (an
    index probe), never found through the word's index: what it costs does not grow with the
    word's matches."""
    if refs is None:
        where = f"{match(s, [term])} AND {of_kinds(s, [kind])}"
    else:
        keys = f"SELECT {fts.doc_key(kind, 0)} + r.ref_id FROM ({refs}) AS r"
        where = f"{match(s, [term], walked=True)} AND {T}.rowid IN ({keys})"
    return f"SELECT {T}.rowid & {MASK} AS ref_id FROM {T} WHERE {where}"


def is_in(column: str, select: str, arrays: bool = False) -> str:
    """``column`` is one of the values ``select`` gives; ``arrays`` (PostgreSQL): as
    ``= ANY(ARRAY(...))``, run once before the rest (an InitPlan), so an index scan takes the
    values found, however many the planner expected (see ``tickets_with_term``)."""
    return f"{column} = ANY(ARRAY({select}))" if arrays else f"{column} IN ({select})"


def tickets_with_term(
    s: Sql, term: fts.Term, among: str | None = None, *, arrays: bool = False
) -> str:
    """SELECT the ids of the tickets whose subject, messages (text, attachment names), customer
    (name, company, addresses; or a customer merged into them) or tags match ``term``.
    ``among``: a table (a CTE) of the only tickets to look at, with their ``id`` and
    ``customer_id``: each is looked at through its own documents' keys, a few index probes a
    ticket, and not through the word's matches (see ``ticket_hits``).
    ``arrays`` (PostgreSQL, see ``is_in``): the planner estimates a word its statistics do not
    list at 0.5% of all documents (11,565 at 1M tickets on the demo desk) and planned the
    message and customer parts as seq scans of ``message`` and ``ticket`` for a word in one
    customer (`search 123456` at 1M: 500 ms); as arrays, index scans of the ids found."""
    term = dataclasses.replace(term, negated=False)
    tickets = "ticket" if among is None else f"{among} AS ticket"

    def refs(kind: int, ids: str) -> str:  # ids: a SELECT of the ref ids among the tickets
        return refs_matching(s, kind, term, None if among is None else ids)

    cand = f"SELECT ticket.id FROM {tickets}"
    # the ref ids looked at among the tickets: theirs, their messages', their customers', and
    # those of the customers their customers were merged into
    own = f"SELECT ticket.id AS ref_id FROM {tickets}"
    messages = f"SELECT message.id AS ref_id FROM message WHERE message.ticket_id IN ({cand})"
    customers = f"SELECT ticket.customer_id AS ref_id FROM {tickets}"
    merged = (
        "SELECT customer.merged_into_id AS ref_id FROM customer WHERE customer.merged_into_id "
        f"IS NOT NULL AND customer.id IN (SELECT ticket.customer_id FROM {tickets})"
    )
    parts = [
        refs(fts.KIND_TICKET, own),
        "SELECT message.ticket_id FROM message WHERE "
        + is_in("message.id", refs(fts.KIND_MESSAGE, messages), arrays),
        f"SELECT ticket.id FROM {tickets} WHERE "
        + is_in("ticket.customer_id", refs(fts.KIND_CUSTOMER, customers), arrays)
        + " OR "
        + is_in(
            "ticket.customer_id",
            "SELECT customer.id FROM customer WHERE "
            + is_in("customer.merged_into_id", refs(fts.KIND_CUSTOMER, merged), arrays),
            arrays,
        ),
    ]
    if len(term.stems) == 1 and term.stems[0]:
        # a tag is a word too: "printer" finds the tickets tagged printer (or printers)
        stem = term.stems[0]
        tagged = (
            "SELECT ticket_tag.ticket_id FROM ticket_tag JOIN tag ON tag.id = ticket_tag.tag_id "
            f"WHERE (lower(tag.name) = {s.bind(stem)} OR lower(tag.name) LIKE {s.bind(stem + '%')})"
        )
        parts.append(tagged if among is None else f"{tagged} AND ticket_tag.ticket_id IN ({cand})")
    return " UNION ".join(parts)


def tickets_with_all(
    s: Sql, terms: Sequence[fts.Term], among: str | None = None, *, arrays: bool = False
) -> str:
    """SELECT the ids of the tickets matching every term (each anywhere in the ticket);
    ``among``, ``arrays``: see ``tickets_with_term``."""
    first = tickets_with_term(s, terms[0], among, arrays=arrays)
    if len(terms) == 1:
        return first
    rest = " AND ".join(
        is_in("every.ref_id", tickets_with_term(s, t, among, arrays=arrays), arrays)
        for t in terms[1:]
    )
    return f"SELECT every.ref_id FROM ({first}) AS every WHERE {rest}"


def ticket_filter(
    s: Sql, negative: Sequence[fts.Term], cond: Cond | None, among: str | None = None
) -> list[str]:
    """The conditions on ``ticket`` of a ticket search: no negated word, the filter terms;
    ``among``: see ``tickets_with_term`` (the negated words looked for among those only)."""
    out = [f"ticket.id NOT IN ({tickets_with_term(s, t, among)})" for t in negative]
    if cond is not None:
        out.append(s.cond(cond))
    return out


def _where(conds: Sequence[str]) -> str:
    return (" WHERE " + " AND ".join(conds)) if conds else ""


def _hits_cte(s: Sql, kinds: Sequence[int], terms: Sequence[fts.Term], window: int | None) -> str:
    """Matching documents with their scores, as a materialized CTE (bm25 must run in the query
    that does the MATCH). With a window, only the ``window`` newest matches of each kind are
    scored: the index walks each kind's rowid range backwards and stops there (for a kind with
    its own GIN index on PostgreSQL, see ``_own_gin_window``)."""
    if window is None:
        return f"WITH hits AS MATERIALIZED ({ranked_docs(s, kinds, terms)}) "
    if own_gin(s, kinds):
        return _own_gin_window(s, kinds[0], terms, window)
    body = " UNION ALL ".join(
        f"SELECT w{k}.rowid AS rowid, w{k}.score AS score FROM "
        f"({ranked_docs(s, [k], terms)} ORDER BY {T}.rowid DESC LIMIT {s.bind(window)}) "
        f"AS w{k}"
        for k in kinds
    )
    return f"WITH hits AS MATERIALIZED ({body}) "


# The walks of a kind with its own GIN index (``_own_gin_window``): first the kind's newest
# PROBE * window keys, then, if the probe's matches promise a full window there, its newest
# WALK * window keys.
PROBE = 1
WALK = 8


def _own_gin_window(s: Sql, kind: int, terms: Sequence[fts.Term], window: int) -> str:
    """PostgreSQL, the newest ``window`` matches of a kind with its own GIN index, as the CTE
    ``hits``. The planner cannot tell a word common in other kinds from one common in this
    one (the statistics of ``tsv`` are over all kinds), so it is not asked; each step below is
    exact, and each runs only when the one before it did not answer (one-time filters):

    1. the probe: the primary key walked backwards over the kind's newest ``PROBE * window``
       keys. ``window`` matches there are the newest (every other match is older).
    2. the walk: the same over the newest ``WALK * window`` keys, only when the probe found
       at least ``window * PROBE / WALK`` matches (at that rate the walk fills the window).
    3. the kind's own GIN index (``(rowid >> 48) = kind``, migration 0015): all the kind's
       matches, ordered by ``rowid + 0`` (which no index yields, so no walk of the key is
       planned), the newest ``window`` kept. A word the probe barely finds is rare in the
       kind's newest documents, and this costs what its matches cost: 0.03 ms for none.

    The walks match by ``ts_match_vq`` (``match(walked=True)``): with ``@@`` the planner may
    take the whole word's GIN bitmap ANDed with the key range instead (12 ms at 100k for a
    word in half of all documents)."""
    w = s.bind(window)
    top = f"(SELECT max(d.rowid) FROM {T} AS d WHERE {in_kinds([kind], 'd.rowid')})"

    def walk(keys: int) -> str:
        return (
            f"{ranked_docs(s, [kind], terms, of=in_kinds([kind]), walked=True)} "
            f"AND {T}.rowid > {top} - {s.bind(keys)} ORDER BY {T}.rowid DESC LIMIT {w}"
        )

    found, walked = "(SELECT count(*) FROM probe)", "(SELECT count(*) FROM walk)"
    full = f"{ranked_docs(s, [kind], terms)} ORDER BY {T}.rowid + 0 DESC LIMIT {w}"
    return (
        f"WITH probe AS MATERIALIZED ({walk(PROBE * window)}), "
        f"walk AS MATERIALIZED (SELECT k.rowid AS rowid, k.score AS score FROM "
        f"({walk(WALK * window)}) AS k "
        f"WHERE {found} < {w} AND {found} * {int(WALK)} >= {w} * {int(PROBE)}), "
        f"hits AS MATERIALIZED (SELECT * FROM ("
        f"SELECT probe.rowid AS rowid, probe.score AS score FROM probe WHERE {found} >= {w} "
        f"UNION ALL SELECT walk.rowid AS rowid, walk.score AS score FROM walk "
        f"WHERE {walked} >= {w} UNION ALL "
        f"SELECT g.rowid AS rowid, g.score AS score FROM ({full}) AS g "
        f"WHERE {found} < {w} AND {walked} < {w}) AS one LIMIT {w}) "
    )


# --------------------------------------------------------------------------- hits per kind

Hit = tuple[int, float, Any]  # (id, score, when as the driver gives it)


def ticket_hits(
    run: Run,
    dialect: str,
    terms: Sequence[fts.Term],
    *,
    want: int,
    newest: bool,
    window: int | None,
    cond: Cond | None = None,
) -> list[Hit]:
    """Tickets with a subject or message holding every word (ranked by their best document,
    or newest first), then tickets matching across documents or by their customer or tags
    (newest first), at most ``want``."""
    s = Sql(dialect)
    negative = [t for t in terms if t.negated and not t.empty]
    kind = f"(hits.rowid >> {fts.KIND_SHIFT})"
    tid = (
        f"CASE WHEN ({kind} = {fts.KIND_TICKET}) THEN hits.rowid & {MASK} ELSE "
        f"(SELECT message.ticket_id FROM message WHERE message.id = (hits.rowid & {MASK})) END"
    )
    order = (
        "ticket.updated_at DESC, ticket.id DESC" if newest else "per.score, ticket.updated_at DESC"
    )
    sql = (
        _hits_cte(s, [fts.KIND_TICKET, fts.KIND_MESSAGE], terms, window)
        + "SELECT ticket.id, per.score, ticket.updated_at FROM ticket JOIN "
        f"(SELECT {tid} AS tid, min(hits.score) AS score FROM hits GROUP BY {tid}) AS per "
        "ON per.tid = ticket.id"
        + _where(ticket_filter(s, negative, cond))
        + f" ORDER BY {order} LIMIT {s.bind(want)}"
    )
    rows: list[Hit] = [(r[0], float(r[1]), r[2]) for r in run(sql, s.params)]
    if len(rows) < want:
        # words spread over subject, messages and customer; or beyond the window
        found = {r[0] for r in rows}
        for tid_, when in newest_tickets_with_all(run, dialect, terms, want + len(found), cond):
            if tid_ not in found and len(rows) < want:
                rows.append((tid_, 0.0, when))
    return rows


# The newest tickets holding words found in more than COMMON * n documents are looked for among
# the newest LOOK * n tickets first
COMMON = 50
LOOK = 8


def newest_tickets_with_all(
    run: Run, dialect: str, terms: Sequence[fts.Term], n: int, cond: Cond | None = None
) -> list[tuple[int, Any]]:
    """(id, updated_at) of the ``n`` most recently updated tickets holding every word anywhere
    (``tickets_with_all``), and none of the negated words, newest first.

    All the tickets holding a word is every match of it: a word in half of the customers is
    half of the tickets (3-4 s of server CPU at 1M). So for a word in many documents
    (``many_documents``) only the newest ``LOOK * n`` tickets (meeting ``cond``) are looked at
    first, each through its own documents (``among``): ``n`` found there are the newest (every
    other ticket is older). Fewer, or a word in few documents: all its tickets are taken (few
    then, or the word is rare among recent tickets)."""
    positive = [t for t in terms if not t.negated and not t.empty]
    negative = [t for t in terms if t.negated and not t.empty]
    order = "ORDER BY ticket.updated_at DESC, ticket.id DESC"
    if many_documents(run, dialect, terms, COMMON * n):
        s = Sql(dialect)
        recent = (
            "WITH recent AS MATERIALIZED (SELECT ticket.id AS id, ticket.customer_id AS "
            f"customer_id FROM ticket{_where([s.cond(cond)] if cond else [])} {order} "
            f"LIMIT {s.bind(LOOK * n)}) "
        )
        sql = (
            recent
            + "SELECT ticket.id, ticket.updated_at FROM ticket"
            + _where(
                ["ticket.id IN (SELECT recent.id FROM recent)",
                 f"ticket.id IN ({tickets_with_all(s, positive, 'recent')})"]
                + ticket_filter(s, negative, None, "recent")
            )
            + f" {order} LIMIT {s.bind(n)}"
        )  # fmt: skip
        got = [(r[0], r[1]) for r in run(sql, s.params)]
        if len(got) >= n:
            return got
    s = Sql(dialect)
    arrays = dialect == "postgresql"  # see tickets_with_term
    sql = (
        "SELECT ticket.id, ticket.updated_at FROM ticket"
        + _where(
            [is_in("ticket.id", tickets_with_all(s, positive, arrays=arrays), arrays)]
            + ticket_filter(s, negative, cond)
        )
        + f" {order} LIMIT {s.bind(n)}"
    )
    return [(r[0], r[1]) for r in run(sql, s.params)]


def many_documents(run: Run, dialect: str, terms: Sequence[fts.Term], n: int) -> bool:
    """Whether ``n`` or more documents (of any kind) may hold one of the words, negated or not.
    SQLite counts them (FTS5 stops at the ``n``-th); PostgreSQL's GIN index would read every
    match before giving the first, so there it is the planner's estimate, from the statistics
    of ``tsv`` (a word they do not list is estimated at most 0.5% of the documents)."""
    s = Sql(dialect)
    words = [dataclasses.replace(t, negated=False) for t in terms if not t.empty]
    docs = f"SELECT 1 FROM {T} WHERE {match(s, words, any_of=True)}"
    if dialect == "postgresql":
        plan = run(f"EXPLAIN {docs}", s.params)
        rows = re.search(r" rows=(\d+) ", str(plan[0][0])) if plan else None
        return rows is None or int(rows[1]) >= n
    return int(run(f"SELECT count(*) FROM ({docs} LIMIT {s.bind(n)}) AS d", s.params)[0][0]) >= n


def message_hits(
    run: Run,
    dialect: str,
    terms: Sequence[fts.Term],
    *,
    want: int,
    newest: bool,
    window: int | None,
    cond: Cond | None = None,
) -> list[Hit]:
    """Single messages holding every word, best (or newest) first, at most ``want``."""
    s = Sql(dialect)
    sql = _hits_cte(s, [fts.KIND_MESSAGE], terms, window) + (
        "SELECT message.id, hits.score, message.created_at FROM message "
        f"JOIN hits ON message.id = (hits.rowid & {MASK})"
    )
    if cond is not None:
        sql += " JOIN ticket ON ticket.id = message.ticket_id WHERE " + s.cond(cond)
    order = "message.created_at DESC, message.id DESC" if newest else "hits.score"
    sql += f" ORDER BY {order} LIMIT {s.bind(want)}"
    return [(r[0], float(r[1]), r[2]) for r in run(sql, s.params)]


def customer_hits(
    run: Run, dialect: str, terms: Sequence[fts.Term], *, want: int, newest: bool,
    window: int | None,
) -> list[Hit]:  # fmt: skip
    """Customers (not merged into another) holding every word, at most ``want``."""
    s = Sql(dialect)
    order = "customer.updated_at DESC" if newest else "hits.score"
    sql = _hits_cte(s, [fts.KIND_CUSTOMER], terms, window) + (
        "SELECT customer.id, hits.score, customer.updated_at FROM customer "
        f"JOIN hits ON customer.id = (hits.rowid & {MASK}) "
        f"WHERE customer.merged_into_id IS NULL ORDER BY {order} LIMIT {s.bind(want)}"
    )
    return [(r[0], float(r[1]), r[2]) for r in run(sql, s.params)]


def kb_hits(
    run: Run, dialect: str, terms: Sequence[fts.Term], *, want: int, newest: bool,
    window: int | None,
) -> list[Hit]:  # fmt: skip
    """Knowledge-base articles holding every word, at most ``want``."""
    s = Sql(dialect)
    order = "kb_article.updated_at DESC" if newest else "hits.score"
    sql = _hits_cte(s, [fts.KIND_KB], terms, window) + (
        "SELECT kb_article.id, hits.score, kb_article.updated_at FROM kb_article "
        f"JOIN hits ON kb_article.id = (hits.rowid & {MASK}) ORDER BY {order} "
        f"LIMIT {s.bind(want)}"
    )
    return [(r[0], float(r[1]), r[2]) for r in run(sql, s.params)]


def ranked_kb(run: Run, dialect: str, terms: Sequence[fts.Term], limit: int) -> dict[int, float]:
    """KB articles holding any of the words, the best ``limit`` (article id -> score)."""
    s = Sql(dialect)
    sql = ranked_docs(s, [fts.KIND_KB], terms, any_of=True)
    sql += f" ORDER BY score LIMIT {s.bind(limit)}"
    return {fts.ref_from_key(rowid): float(sc) for rowid, sc in run(sql, s.params)}


def count(run: Run, kind: int | None = None) -> int:
    """Documents in the index (of one kind)."""
    where = "" if kind is None else f" WHERE {in_kinds([kind])}"
    return int(run(f"SELECT count(*) FROM {T}{where}", {})[0][0] or 0)


# --------------------------------------------------------------------------- rows of the hits


def _rows(run: Run, sql: str, ids: Sequence[int], tail: str = "") -> list[Sequence[Any]]:
    """``sql`` (ending in ``IN``) over ``ids`` in chunks."""
    out: list[Sequence[Any]] = []
    wanted = sorted(set(ids))
    for i in range(0, len(wanted), CHUNK):
        chunk = wanted[i : i + CHUNK]
        names = [f"i_{n}" for n in range(len(chunk))]
        marks = ", ".join(f":{n}" for n in names)
        out += run(f"{sql} ({marks}){tail}", dict(zip(names, chunk, strict=True)))
    return out


def tickets(run: Run, ids: Sequence[int]) -> dict[int, tuple[Any, ...]]:
    """(id, subject, status, channel, customer_id) by ticket id."""
    sql = "SELECT id, subject, status, channel, customer_id FROM ticket WHERE id IN"
    return {r[0]: tuple(r) for r in _rows(run, sql, ids)}


def messages(run: Run, ids: Sequence[int]) -> dict[int, tuple[Any, ...]]:
    """(id, ticket_id, subject, text, direction, author) by message id."""
    sql = "SELECT id, ticket_id, subject, text, direction, author FROM message WHERE id IN"
    return {r[0]: tuple(r) for r in _rows(run, sql, ids)}


def customers(run: Run, ids: Sequence[int]) -> dict[int, tuple[Any, ...]]:
    """(id, name, company) by customer id."""
    sql = "SELECT id, name, company FROM customer WHERE id IN"
    return {r[0]: tuple(r) for r in _rows(run, sql, ids)}


def identities(run: Run, customer_ids: Sequence[int]) -> dict[int, list[tuple[str, str, str]]]:
    """Each customer's identities (kind, address, display), oldest first."""
    sql = "SELECT id, customer_id, kind, address, display FROM identity WHERE customer_id IN"
    out: dict[int, list[tuple[str, str, str]]] = {}
    for _id, cid, kind, address, display in sorted(
        _rows(run, sql, customer_ids), key=lambda r: r[0]
    ):
        out.setdefault(cid, []).append((kind, address, display))
    return out


def articles(run: Run, ids: Sequence[int]) -> dict[int, tuple[Any, ...]]:
    """(id, title, body, slug, tags, public) by article id."""
    sql = "SELECT id, title, body, slug, tags, public FROM kb_article WHERE id IN"
    return {r[0]: tuple(r) for r in _rows(run, sql, ids)}


def recent_texts(run: Run, ticket_ids: Sequence[int]) -> list[tuple[int, int, str]]:
    """(id, ticket_id, text) of the tickets' messages, newest (highest id) first."""
    sql = "SELECT id, ticket_id, text FROM message WHERE ticket_id IN"
    rows = _rows(run, sql, ticket_ids)
    return sorted(((r[0], r[1], r[2]) for r in rows), key=lambda r: r[0], reverse=True)
