"""A bulk load (the demo's synthetic tickets) indexes its own rows, in batches, to exactly the
documents a rebuild from the tables makes, and leaves the schema and the id sequences whole."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from supportdesk.demo import build
from supportdesk.search.search import rebuild_index, search_desk
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
    desk = build.build_demo(tmp_path / "demo", size=300)
    try:
        loaded = _docs(desk)
        assert len(loaded) > 300 * 2 + 100  # tickets, messages, customers and the story
        assert _indexes(desk) == fresh_indexes  # dropped for the load, built again
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
