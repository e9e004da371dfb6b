"""Migration 0013 on PostgreSQL: a partial GIN index of the customers' search documents and one
of the KB articles', whose predicate is the key range ``store.hits`` asks for, so a search of one
of those kinds is answered from that kind's index entries (not the whole word's bitmap)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from supportdesk.store import fts, hits
from supportdesk.store.db import session_run
from tests.conftest import TEST_BACKEND
from tests.factories import inbound_email, ingest

pytestmark = pytest.mark.skipif(TEST_BACKEND != "postgres", reason="PostgreSQL's indexes")


def _fill(desk: Any) -> None:
    """Documents of every kind (10,000 each; "printer" only in tickets' and messages', a number
    in 1% of each kind's), as a desk of some size would hold, analyzed: the planner's choice
    follows the statistics."""
    with desk.db.write() as s:
        conn = s.connection()
        for kind in (fts.KIND_TICKET, fts.KIND_MESSAGE, fts.KIND_CUSTOMER, fts.KIND_KB):
            word = "printer" if kind in (fts.KIND_TICKET, fts.KIND_MESSAGE) else "anna"
            conn.exec_driver_sql(
                f"INSERT INTO {fts.TABLE} (rowid, title, body) SELECT "
                f"{fts.doc_key(kind, 0)} + 1000000 + g, 'doc ' || g, '{word} words ' || mod(g, 97) "
                "FROM generate_series(1, 10000) AS g"
            )
        conn.exec_driver_sql(f"ANALYZE {fts.TABLE}")


def _plan(desk: Any, kind: int, word: str, *, forced: bool = True, window: int = 2000) -> str:
    """EXPLAIN of the customer / KB window query; ``forced``: with plain index walks and table
    scans off (the backward walk of the key is the plan the index is there to replace); if not,
    EXPLAIN ANALYZE of the window (what ran, with the planner's own choice)."""
    captured: list[tuple[str, dict[str, Any]]] = []

    def capture(sql: str, params: dict[str, Any]) -> list[Any]:
        captured.append((sql, params))
        return []

    terms = fts.Parsed([fts.make_term(word)]).terms
    fetch = hits.customer_hits if kind == fts.KIND_CUSTOMER else hits.kb_hits
    fetch(capture, "postgresql", terms, want=20, newest=False, window=window)
    sql, params = captured[0]
    if not forced:  # the window alone, all of it run (no customer or article rows here)
        q = hits.Sql("postgresql")
        sql, params = (
            hits._hits_cte(q, [kind], terms, window) + "SELECT count(*) FROM hits",
            q.params,
        )
    with desk.db.read() as s:
        conn = s.connection()
        if forced:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            conn.exec_driver_sql("SET LOCAL enable_indexscan = off")
        run = session_run(s)
        explain = "EXPLAIN " if forced else "EXPLAIN (ANALYZE, COSTS OFF) "
        return "\n".join(r[0] for r in run(explain + sql, params))


@pytest.mark.parametrize(("kind", "index"), [(fts.KIND_CUSTOMER, "ix_search_doc_tsv_customer"),
                                             (fts.KIND_KB, "ix_search_doc_tsv_kb")])  # fmt: skip
def test_a_kind_window_is_read_from_the_kinds_own_index(desk: Any, kind: int, index: str) -> None:
    _fill(desk)
    plan = _plan(desk, kind, "13")  # in 1% of every kind's documents
    assert f"Bitmap Index Scan on {index}" in plan, plan
    assert "ix_search_doc_tsv\n" not in plan + "\n" and "BitmapAnd" not in plan, plan


@pytest.mark.parametrize(("kind", "index"), [(fts.KIND_CUSTOMER, "ix_search_doc_tsv_customer"),
                                             (fts.KIND_KB, "ix_search_doc_tsv_kb")])  # fmt: skip
def test_a_word_common_in_other_kinds_is_not_a_walk_of_the_kind(
    desk: Any, kind: int, index: str
) -> None:
    """The planner left to itself (migration 0015): "printer" is in half of all documents, the
    tickets' and messages', and in none of this kind's. Taking it as half of this kind's too, it
    walked the primary key backwards over the kind's whole range (333k customer documents at 1M
    tickets, 42 ms); now the walk stops after the kind's newest ``WALK * window`` keys, and the
    kind's own index gives the rest."""
    _fill(desk)
    window = 100  # the walk: 800 keys of the kind's 10,000
    plan = _plan(desk, kind, "printer", forced=False, window=window)
    removed = [int(line.rsplit(":", 1)[1]) for line in plan.splitlines()
               if "Rows Removed by Filter" in line]  # fmt: skip
    assert removed and max(removed) <= hits.WALK * window, plan
    gin = [line for line in plan.splitlines() if f"Bitmap Index Scan on {index}" in line]
    assert gin and "never executed" not in gin[0], plan


def test_a_word_common_in_the_kind_is_read_by_the_walk(desk: Any) -> None:
    """A word in most of the kind's documents fills the window within the walk: its own index
    (every match of the kind) is not read."""
    _fill(desk)
    plan = _plan(desk, fts.KIND_CUSTOMER, "anna", forced=False, window=100)
    gin = [line for line in plan.splitlines() if "ix_search_doc_tsv_customer" in line]
    assert gin and all("never executed" in line for line in gin), plan


def test_customers_are_still_found_through_their_index(desk: Any) -> None:
    ingest(
        desk,
        inbound_email(
            subject="toner", text="empty", sender_address="zq@ex.test", sender_name="Zebulon Quux"
        ),
    )
    with desk.db.read() as s:
        run = session_run(s)
        terms = fts.Parsed([fts.make_term("zebulon")]).terms
        got = hits.customer_hits(run, "postgresql", terms, want=20, newest=False, window=2000)
        names = hits.customers(run, [g[0] for g in got])
    assert [n[1] for n in names.values()] == ["Zebulon Quux"]


def test_a_word_the_kind_lacks_is_not_walked_past_the_probe(desk: Any) -> None:
    """Issue 21 at 100k: "printer" is in no customer document, and the walk of the customers'
    newest ``WALK * window`` keys (16,000: ~5 ms, half the kind) ran before the kind's own index
    answered (0.2 ms). Now a probe of the newest ``PROBE * window`` keys finds too few matches
    to promise a full window there, and the kind's index answers: the walk is not run."""
    _fill(desk)
    window = 100
    plan = _plan(desk, fts.KIND_CUSTOMER, "printer", forced=False, window=window)
    removed = [int(line.rsplit(":", 1)[1]) for line in plan.splitlines()
               if "Rows Removed by Filter" in line]  # fmt: skip
    assert removed and sum(removed) <= hits.PROBE * window, plan
    gin = [
        line
        for line in plan.splitlines()
        if "Bitmap Index Scan on ix_search_doc_tsv_customer" in line
    ]
    assert gin and "never executed" not in gin[0], plan
    assert "Bitmap Index Scan on ix_search_doc_tsv\n" not in plan + "\n", plan  # no global GIN


def _fill_rates(desk: Any) -> None:
    """10,000 customer documents (keys 1..10,000 of the kind): "anna" in all, "quarter" in
    one in four, "rare" in one in 97, "old" in the oldest 3,000 only, "mid" only between
    the newest 150th and 700th key; and 10,000 ticket documents with all of those words, so the
    statistics of ``tsv`` say nothing about the customers'."""
    body = (
        "'anna ' || CASE WHEN mod(g, 4) = 0 THEN 'quarter ' ELSE '' END"
        " || CASE WHEN mod(g, 97) = 0 THEN 'rare ' ELSE '' END"
        " || CASE WHEN g <= 3000 THEN 'old ' ELSE '' END"
        " || CASE WHEN g > 9300 AND g <= 9850 THEN 'mid ' ELSE '' END"
    )
    with desk.db.write() as s:
        conn = s.connection()
        conn.exec_driver_sql(
            f"INSERT INTO {fts.TABLE} (rowid, title, body) SELECT "
            f"{fts.doc_key(fts.KIND_CUSTOMER, 0)} + 1000000 + g, 'doc', {body} "
            "FROM generate_series(1, 10000) AS g"
        )
        conn.exec_driver_sql(
            f"INSERT INTO {fts.TABLE} (rowid, title, body) SELECT "
            f"{fts.doc_key(fts.KIND_TICKET, 0)} + 1000000 + g, 'doc', "
            "'anna quarter rare old mid' FROM generate_series(1, 10000) AS g"
        )
        conn.exec_driver_sql(f"ANALYZE {fts.TABLE}")


@pytest.mark.parametrize(
    ("word", "step"),
    [
        ("anna", "probe"),  # fills the window within the probe
        ("quarter", "walk"),  # the probe promises a full window within the walk
        ("rare", "index"),  # the probe finds ~1: the kind's index
        ("old", "index"),  # the probe and the walk find nothing, the index all of them
        ("mid", "index"),  # none in the probe's keys (550 in the walk's): the index, exact
        ("absent", "index"),
    ],
)
def test_the_customer_window_is_the_newest_matches_whichever_step_answers(
    desk: Any, word: str, step: str
) -> None:
    _fill_rates(desk)
    window = 100  # probe: the newest 100 keys; walk: the newest 800
    terms = fts.Parsed([fts.make_term(word)]).terms
    q = hits.Sql("postgresql")
    sql = hits._hits_cte(q, [fts.KIND_CUSTOMER], terms, window) + (
        "SELECT rowid FROM hits ORDER BY rowid DESC"
    )
    lo, hi = fts.doc_key(fts.KIND_CUSTOMER, 0), fts.doc_key(fts.KIND_CUSTOMER, fts.REF_MASK)
    exact = (
        f"SELECT rowid FROM {fts.TABLE} WHERE rowid >= {lo} AND rowid <= {hi} AND "
        f"tsv @@ to_tsquery('simple', :q) ORDER BY rowid DESC LIMIT {window}"
    )
    with desk.db.read() as s:
        run = session_run(s)
        got = [r[0] for r in run(sql, q.params)]
        want = [r[0] for r in run(exact, {"q": terms[0].stems[0]})]
        plan = "\n".join(r[0] for r in run("EXPLAIN (ANALYZE, COSTS OFF) " + sql, q.params))
    assert got == want, (word, len(got), len(want))
    assert len(want) == min(window, {"anna": 10000, "quarter": 2500, "rare": 103,
                                     "old": 3000, "mid": 550, "absent": 0}[word])  # fmt: skip
    walk = _ran(plan, rf"rowid > \(\$\d+ - '?{hits.WALK * window}\b")  # the walk's key bound
    gin = _ran(plan, "ix_search_doc_tsv_customer")
    assert walk and gin, plan
    assert (any(walk), any(gin)) == (step == "walk", step == "index"), plan


def _ran(plan: str, marker: str) -> list[bool]:
    """For each node of an EXPLAIN ANALYZE with a line matching ``marker``: whether it ran."""
    nodes: list[list[str]] = []
    for line in plan.splitlines():
        if "->" in line or not nodes:
            nodes.append([line])
        else:
            nodes[-1].append(line)
    return ["never executed" not in n[0] for n in nodes if any(re.search(marker, x) for x in n)]
