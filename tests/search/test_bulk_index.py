"""A bulk load (the demo's synthetic tickets) indexes its own rows, in batches, to exactly the
documents a rebuild from the tables makes, and leaves the schema and the id sequences whole."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from supportdesk.demo import build
from supportdesk.search.search import rebuild_index, search_desk
from supportdesk.store import search as search_store
from supportdesk.store.bulk import secondary_indexes
from tests.factories import inbound_email, ingest


def _docs(desk: Any) -> list[tuple[Any, ...]]:
    with desk.db.read() as s:
        rows = s.connection().execute(
            sa.text("SELECT rowid, title, body, extra FROM search_doc ORDER BY rowid")
        )
        return [tuple(r) for r in rows]


def _indexes(desk: Any) -> list[tuple[str, str]]:
    with desk.db.read() as s:
        return secondary_indexes(s.connection(), build.BULK_TABLES)


def test_draw_is_random_choice() -> None:
    for seed in range(20):
        for words in (build._WORDS_EN, build._WORDS_RU, ["a", "b", "c"]):
            a, b = random.Random(seed), random.Random(seed)
            assert build._draw(b.getrandbits, words, 100) == [a.choice(words) for _ in range(100)]
            assert a.random() == b.random()  # the generators stay in step


def test_synthetic_batches_index_what_a_rebuild_indexes(
    desk: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    fresh_indexes = _indexes(desk)  # a new desk's schema (on PostgreSQL the same database)
    assert len(fresh_indexes) > 5
    monkeypatch.setattr(build, "BATCH", 70)  # several transactions, customers and tickets
    desk.db.analyze(every_table=True)  # analyzed while empty, as a desk's migrations leave it
    desk = build.build_demo(tmp_path / "demo", size=300)
    try:
        loaded = _docs(desk)
        assert len(loaded) > 300 * 2 + 100  # tickets, messages, customers and the story
        assert _indexes(desk) == fresh_indexes  # dropped for the load, built again
        # and the planner has statistics of what was loaded (on PostgreSQL CREATE INDEX had
        # hidden the load from the grown-tables check: plans for 500 rows at 1M tickets)
        with desk.db.read() as s:
            c = s.connection()
            if c.dialect.name == "postgresql":
                stats = c.execute(sa.text(
                    "SELECT count(*) FROM pg_stats WHERE schemaname = current_schema() "
                    "AND tablename = 'ticket' AND attname = 'solved_at'"
                )).scalar()  # fmt: skip
                # vacuumed too: the visibility map lets the report's counts be index-only
                vacuumed = c.execute(sa.text(
                    "SELECT last_vacuum FROM pg_stat_user_tables WHERE relname = 'ticket'"
                )).scalar()  # fmt: skip
                assert vacuumed is not None
            else:
                stats = c.execute(
                    sa.text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'ticket'")
                ).scalar()
        assert stats
        hits = search_desk(desk, "printer", limit=500)
        rebuild_index(desk)
        assert _docs(desk) == loaded
        assert search_desk(desk, "printer", limit=500) == hits
        # the ids the load wrote itself are behind the sequences: a new ticket gets a new id
        with desk.db.read() as s:
            top = s.connection().execute(sa.text("SELECT max(id) FROM ticket")).scalar()
        got = ingest(desk, inbound_email(external_id="after-load@x", subject="After the load"))
        assert got.ticket_id is not None and got.ticket_id > top
    finally:
        desk.close()


# the words of the synthetic text and of the story: English, Russian, a prefix, a phrase, a
# negation and a customer's address
QUERIES = (
    "printer",
    "принтер",
    "оплата карта",
    "синхр*",
    "acc*",
    '"refund delivery"',
    "invoice -payment",
    "user5@synthetic.test",
)


def _options(desk: Any) -> dict[str, Any]:
    with desk.db.read() as s:
        return search_store.fts_options(s.connection())


@pytest.mark.sqlite_only
def test_bulk_policy_in_force_during_the_load_and_defaults_after(
    tmp_path: Path, monkeypatch: Any
) -> None:
    seen: list[dict[str, Any]] = []
    real_insert = search_store.insert

    def spy(conn: Any, docs: Any) -> None:
        seen.append(search_store.fts_options(conn))
        real_insert(conn, docs)

    monkeypatch.setattr(build, "BATCH", 70)
    monkeypatch.setattr(build, "TX_BATCHES", 1)
    monkeypatch.setattr(search_store, "insert", spy)
    desk = build.build_demo(tmp_path / "demo", size=300)
    try:
        # every transaction of the load wrote under the bulk policy (the story's rebuild not)
        assert len(seen) >= 5
        assert seen[-5:] == [search_store.BULK_POLICY] * 5
        assert _options(desk) == {}  # nothing stored after: FTS5's defaults again
        with desk.db.write() as s:
            s.connection().execute(
                sa.text("INSERT INTO search_doc(search_doc) VALUES ('integrity-check')")
            )
    finally:
        desk.close()


@pytest.mark.sqlite_only
def test_bulk_policy_put_back_when_the_load_fails(tmp_path: Path, monkeypatch: Any) -> None:
    desk = build.build_demo(tmp_path / "demo")
    try:
        with desk.db.write() as s:  # a desk whose owner tuned one option keeps it
            s.connection().execute(
                sa.text("INSERT INTO search_doc(search_doc, rank) VALUES ('automerge', 8)")
            )
        calls = 0
        real_insert = search_store.insert

        def fail_second(conn: Any, docs: Any) -> None:
            nonlocal calls
            calls += 1
            if calls == 2:
                raise RuntimeError("disk full")
            real_insert(conn, docs)

        monkeypatch.setattr(build, "BATCH", 70)
        monkeypatch.setattr(build, "TX_BATCHES", 1)
        monkeypatch.setattr(search_store, "insert", fail_second)
        with pytest.raises(RuntimeError, match="disk full"):
            build.add_synthetic(desk, 300)
        assert calls == 2
        assert _options(desk) == {"automerge": 8}
        assert _indexes(desk)  # the indexes are built again too
    finally:
        desk.close()


@pytest.mark.sqlite_only  # two desks; on PostgreSQL the policy is nothing
def test_bulk_policy_indexes_what_the_defaults_index(tmp_path: Path, monkeypatch: Any) -> None:
    """The same load under FTS5's defaults and under the bulk policy: the same documents, and
    every query answers the same ids in the same order."""
    now = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    monkeypatch.setattr(build, "BATCH", 70)
    answers = []
    for policy in (search_store.FTS5_DEFAULTS, search_store.BULK_POLICY):
        monkeypatch.setattr(search_store, "BULK_POLICY", policy)
        desk = build.build_demo(tmp_path / f"demo{len(answers)}", size=300, now=now)
        try:
            got = {
                q: [(h["kind"], h["id"], h.get("ticket_id"), h["score"], h.get("snippet"))
                    for h in search_desk(desk, q, limit=500)]
                for q in QUERIES
            }  # fmt: skip
            answers.append((_docs(desk), got))
        finally:
            desk.close()
    (docs_a, hits_a), (docs_b, hits_b) = answers
    assert docs_a == docs_b
    for q in QUERIES:
        assert hits_a[q] == hits_b[q], q
    assert all(hits_a[q] for q in QUERIES[:-1])  # the queries find something


def _segments(db: Any) -> list[int]:
    """The segment ids of the FTS5 index (SQLite)."""
    with db.read() as s:
        rows = s.connection().execute(sa.text("SELECT DISTINCT segid FROM search_doc_idx"))
        return [r[0] for r in rows]


@pytest.mark.sqlite_only
def test_the_load_writes_few_segments_and_leaves_one(tmp_path: Path, monkeypatch: Any) -> None:
    """Several batches per transaction, each transaction's documents (customers' included) one
    segment, nothing merged while they are written, and all of them merged into one at the
    end: at a million tickets 13 segments merged once instead of 70 merged level by level."""
    flushed: list[int] = []
    real_insert = search_store.insert

    def spy(conn: Any, docs: Any) -> None:
        real_insert(conn, docs)
        flushed.append(len({d.kind for d in docs}))

    monkeypatch.setattr(build, "BATCH", 70)
    monkeypatch.setattr(build, "TX_BATCHES", 3)
    monkeypatch.setattr(search_store, "insert", spy)
    merges: list[int] = []
    real_merge = search_store.merge_all

    def count_merge(db: Any, pages: int = search_store.MERGE_ALL_PAGES) -> int:
        merges.append(len(_segments(db)))
        return real_merge(db, pages=5)  # several transactions of merging

    monkeypatch.setattr(search_store, "merge_all", count_merge)
    desk = build.build_demo(tmp_path / "demo", size=900)  # 5 transactions of 210 tickets
    try:
        assert flushed[-5:] == [3] * 5  # tickets, messages and customers in each
        assert merges[0] >= 5  # nothing merged during the load
        assert len(_segments(desk.db)) == 1
        with desk.db.write() as s:
            s.connection().execute(
                sa.text("INSERT INTO search_doc(search_doc) VALUES ('integrity-check')")
            )
        with desk.db.read() as s:
            last = s.connection().execute(sa.text("SELECT max(id) FROM customer")).scalar()
        hits = search_desk(desk, f"user{last}@synthetic.test")  # the last transaction's share
        assert ("customer", last) in [(h["kind"], h["id"]) for h in hits]
    finally:
        desk.close()


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_off_during_the_load_and_as_it_was_after(
    desk: Any, monkeypatch: Any, enabled: bool
) -> None:
    import gc

    seen: list[bool] = []
    real = build.write_rows

    def spy(*args: Any, **kw: Any) -> None:
        seen.append(gc.isenabled())
        real(*args, **kw)

    monkeypatch.setattr(build, "BATCH", 70)
    monkeypatch.setattr(build, "write_rows", spy)
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        build.add_synthetic(desk, 300)
        after = gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
    assert len(seen) >= 5 and not any(seen)  # no automatic collections while batches are made
    assert after is enabled
