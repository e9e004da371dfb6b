"""The newest tickets holding some words anywhere (subject, messages, customer, a customer merged
into it, tags): the ticket search's look past its ranked window
(``store.hits.newest_tickets_with_all``). A word common among customers made that every ticket
of theirs (3-4 s of server CPU at 1M tickets); the newest tickets are now looked at first, and
the answer must be the one the whole set gives."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from supportdesk.actions.journal import set_tags
from supportdesk.people import customers
from supportdesk.store import fts, hits
from supportdesk.store.db import session_run
from supportdesk.store.models import Ticket
from tests.conftest import TEST_BACKEND
from tests.factories import inbound_email, ingest

N = 30


def _fill(desk: Any) -> list[int]:
    """30 tickets: customers named "Acme" (even) or "Other"; "acme" in some subjects, "printer"
    in every third message; an Other customer merged into an Acme one; an Other ticket tagged
    "acmewidget"; the tickets' update times shuffled (not their ids' order)."""
    ids = []
    for i in range(N):
        ids.append(ingest(desk, inbound_email(
            subject="acme order" if i % 7 == 3 else f"question {i}",
            text="the printer jams" if i % 3 == 0 else "hello",
            sender_address=f"p{i}@ex.test",
            sender_name=f"Acme Person {i}" if i % 2 == 0 else f"Other Person {i}",
        )).ticket_id)  # fmt: skip
    customers.merge(desk, "p5@ex.test", into="p4@ex.test")
    base = datetime(2026, 11, 21, tzinfo=UTC)
    with desk.db.write() as s:
        set_tags(s, ids[9], ["acmewidget"], [])
        for n, tid in enumerate(ids):
            ticket = s.get(Ticket, tid)
            assert ticket is not None
            ticket.updated_at = base + timedelta(minutes=(n * 7) % N)
            s.add(ticket)
    return ids


def _terms(query: str) -> list[fts.Term]:
    return fts.Parsed([fts.make_term(w[1:], negated=True) if w.startswith("-")
                       else fts.make_term(w) for w in query.split()]).terms  # fmt: skip


def _newest(
    desk: Any, query: str, n: int, cond: hits.Cond | None = None
) -> tuple[list[int], list[str]]:
    """The ids found, and the statements run."""
    with desk.db.read() as s:
        run = session_run(s)
        ran: list[str] = []

        def recorded(sql: str, params: dict[str, Any]) -> list[Any]:
            ran.append(sql)
            return run(sql, params)

        got = hits.newest_tickets_with_all(recorded, desk.db.dialect, _terms(query), n, cond)
        return [r[0] for r in got], ran


@pytest.mark.parametrize(
    ("query", "n", "cond"),
    [
        ("acme", 3, None),  # customers, subjects, the merged customer, the tag
        ("acme", 25, None),  # more than there are: the whole set
        ("person", 4, None),  # customers only
        ("acme printer", 2, None),  # two words in different documents of one ticket
        ("acme -printer", 3, None),
        ("person", 3, ("ticket.id % 3 = 1", {})),  # the query language's filter terms
        ("nowhere", 3, None),
    ],
)
def test_the_newest_matching_tickets_are_the_whole_sets_newest(
    desk: Any, monkeypatch: pytest.MonkeyPatch, query: str, n: int, cond: hits.Cond | None
) -> None:
    _fill(desk)
    monkeypatch.setattr(hits, "COMMON", 0)  # every word in many documents: the newest first
    got, ran = _newest(desk, query, n, cond)
    monkeypatch.setattr(hits, "LOOK", 0)  # no recent tickets to look at first: the whole set
    whole, _ = _newest(desk, query, n, cond)
    assert got == whole
    if query in ("acme", "person") and n <= 4:
        assert len(got) == n and "recent" in ran[-1]  # found among the newest 8 * n: no more
    if query == "acme":
        # what the words reach: a customer's name, a merged customer, a tag
        with desk.db.read() as s:
            rows = session_run(s)("SELECT id, updated_at FROM ticket", {})
        newest = [r[0] for r in sorted(rows, key=lambda r: (r[1], r[0]), reverse=True)]
        assert got[:3] == [t for t in newest if t in set(whole)][:3]


def _many_persons(desk: Any) -> None:
    """10,000 customer documents holding "person" (customers of no ticket), analyzed."""
    with desk.db.write() as s:
        conn = s.connection()
        if desk.db.dialect == "postgresql":
            conn.exec_driver_sql(
                f"INSERT INTO {fts.TABLE} (rowid, title, body) SELECT "
                f"{fts.doc_key(fts.KIND_CUSTOMER, 0)} + 1000000 + g, 'Person ' || g, 'person' "
                "FROM generate_series(1, 10000) AS g"
            )
            conn.exec_driver_sql(f"ANALYZE {fts.TABLE}")
        else:
            conn.exec_driver_sql(
                "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 10000) "
                f"INSERT INTO {fts.TABLE} (rowid, title, body, extra) SELECT "
                f"{fts.doc_key(fts.KIND_CUSTOMER, 0)} + 1000000 + n, 'Person ' || n, 'person', '' "
                "FROM g"
            )


def test_only_a_word_in_many_documents_is_looked_for_among_the_newest_first(desk: Any) -> None:
    """The look among the newest tickets reads a few documents of each (on SQLite ~20 us each:
    ~20 ms at 1M for nothing when the word is rare); all of a rare word's tickets cost less."""
    _fill(desk)
    _many_persons(desk)
    with desk.db.read() as s:
        run, dialect = session_run(s), desk.db.dialect
        assert hits.many_documents(run, dialect, _terms("person"), hits.COMMON * 3)
        assert hits.many_documents(run, dialect, _terms("nowhere person"), hits.COMMON * 3)
        assert hits.many_documents(run, dialect, _terms("acme -person"), hits.COMMON * 3)
        assert not hits.many_documents(run, dialect, _terms("nowhere"), hits.COMMON * 3)
    got, ran = _newest(desk, "person", 3)
    assert len(got) == 3 and "recent" in ran[-1]
    got, ran = _newest(desk, "acme", 3)  # ~20 documents
    assert len(got) == 3 and not any("recent" in sql for sql in ran)


@pytest.mark.skipif(TEST_BACKEND != "postgres", reason="PostgreSQL's plans")
def test_a_word_in_many_customers_reads_the_newest_tickets_documents_only(desk: Any) -> None:
    """Issue 21 at 1M: "customer" is in 166k customer documents, and when fewer than a page of
    tickets held it in their subject or messages, every one of those customers' tickets was
    read (``ticket.customer_id IN (...)``, 3-4 s of server CPU). Here 10,000 customer documents
    hold "person": the search reads the documents of its newest tickets only."""
    _fill(desk)
    _many_persons(desk)
    terms = fts.Parsed([fts.make_term("person")]).terms
    captured: list[tuple[str, dict[str, Any]]] = []
    with desk.db.read() as s:
        run = session_run(s)

        def capture(sql: str, params: dict[str, Any]) -> list[Any]:
            captured.append((sql, params))
            return run(sql, params)

        got = hits.ticket_hits(capture, "postgresql", terms, want=3, newest=False, window=2000)
        assert len(got) == 3
        plans = [
            "\n".join(r[0] for r in run("EXPLAIN (ANALYZE, COSTS OFF) " + sql, params))
            for sql, params in captured[1:]
            if not sql.startswith("EXPLAIN")
        ]  # fmt: skip  (after the ranked window)
    assert plans
    for plan in plans:
        read = 0
        for line in plan.splitlines():
            m = re.search(r"on search_doc\b.*rows=(\d+) loops=(\d+)", line)
            if m:
                read += int(m[1]) * int(m[2])
        assert read <= 100, plan  # documents of the newest tickets, not 10,000 customers'
