"""The demo is built in a folder of its own and moved into place when whole: a failed build
never leaves a half-built desk that looks valid, so the synthetic load may run on SQLite without
a rollback journal, and the desk is in WAL mode again after it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from supportdesk.demo import build
from supportdesk.desk.desk import Conflict, open_desk
from supportdesk.store import search as search_store

pytestmark = [pytest.mark.sqlite_only]  # the journal, and two demo desks in a row


def _tickets(home: Path) -> int:
    desk = open_desk(home, agent="alice")
    try:
        with desk.db.read() as s:
            return int(s.connection().execute(sa.text("SELECT count(*) FROM ticket")).scalar())
    finally:
        desk.close()


def test_the_load_runs_without_a_journal_and_the_desk_is_wal_after(
    tmp_path: Path, monkeypatch: Any
) -> None:
    modes: list[str] = []
    real_insert = search_store.insert

    def spy(conn: Any, docs: Any) -> None:
        raw = conn.connection.driver_connection
        modes.append(raw.execute("PRAGMA journal_mode").fetchone()[0])
        real_insert(conn, docs)

    monkeypatch.setattr(build, "BATCH", 70)
    monkeypatch.setattr(build, "TX_BATCHES", 2)
    monkeypatch.setattr(search_store, "insert", spy)
    (tmp_path / ".demo.building").mkdir()  # left by a build that was killed
    (tmp_path / ".demo.building" / "junk").write_text("x")
    desk = build.build_demo(tmp_path / "demo", size=300)
    try:
        assert modes[-3:] == ["off"] * 3  # the synthetic transactions (2 batches of 70 each)
        with desk.db.read() as s:
            c = s.connection()
            assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert c.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            assert c.execute(sa.text("SELECT count(*) FROM ticket")).scalar() > 300
        with desk.db.write() as s:
            s.connection().execute(
                sa.text("INSERT INTO search_doc(search_doc) VALUES ('integrity-check')")
            )
    finally:
        desk.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]  # nothing left beside it


def test_a_failed_build_leaves_the_previous_demo_and_no_half_built_desk(
    tmp_path: Path, monkeypatch: Any
) -> None:
    home = tmp_path / "demo"
    build.build_demo(home).close()  # the previous demo: the story only
    before = _tickets(home)
    calls = 0
    real_insert = search_store.insert

    def fail_later(conn: Any, docs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 5:  # in the middle of the synthetic tickets, without a journal
            raise RuntimeError("disk full")
        real_insert(conn, docs)

    monkeypatch.setattr(build, "BATCH", 70)
    monkeypatch.setattr(build, "TX_BATCHES", 1)
    monkeypatch.setattr(search_store, "insert", fail_later)
    with pytest.raises(RuntimeError, match="disk full"):
        build.build_demo(home, size=300)
    assert calls == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]
    assert _tickets(home) == before  # the previous demo, whole

    fresh = tmp_path / "fresh"
    calls = 0
    with pytest.raises(RuntimeError, match="disk full"):
        build.build_demo(fresh, size=300)
    assert not fresh.exists()  # no desk at all rather than half of one

    # killed in the final merge of the index's segments, after every row was written
    monkeypatch.setattr(search_store, "insert", real_insert)
    real_merge = search_store.merge_all

    def fail_merge(db: Any, pages: int = 1) -> int:
        real_merge(db, pages=1)  # some of it merged, without a journal
        raise KeyboardInterrupt

    monkeypatch.setattr(search_store, "merge_all", fail_merge)
    with pytest.raises(KeyboardInterrupt):
        build.build_demo(fresh, size=300)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


def test_a_link_at_the_build_folder_is_refused_not_followed(tmp_path: Path) -> None:
    # in a shared parent (/tmp) another user could put a link where the build folder goes, to
    # have the demo and its config.toml built in a folder they can write
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (tmp_path / ".demo.building").symlink_to(theirs)
    with pytest.raises(Conflict, match="in the way"):
        build.build_demo(tmp_path / "demo")
    assert list(theirs.iterdir()) == []
    assert not (tmp_path / "demo").exists()


def test_a_killed_build_folder_of_ours_is_cleared(tmp_path: Path) -> None:
    leftover = tmp_path / ".demo.building"
    leftover.mkdir()
    (leftover / "desk.db").write_bytes(b"half")
    build.build_demo(tmp_path / "demo").close()
    assert not leftover.exists()
    assert _tickets(tmp_path / "demo") > 0


def test_a_home_in_a_folder_that_does_not_exist_yet_is_built(tmp_path: Path) -> None:
    """`demo --home ~/desks/demo` with no ~/desks: made, as before the build folder (the bench's
    console section builds its desk so)."""
    home = tmp_path / "new" / "folder" / "demo"
    build.build_demo(home).close()
    assert _tickets(home) > 0
    assert not (home.parent / ".demo.building").exists()
