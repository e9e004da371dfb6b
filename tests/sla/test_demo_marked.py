"""A demo desk is built as the runner's SLA pass would leave it: the first pass over it finds
nothing to record, and what the build marked (breach flags, pauses, ``sla_breached`` events) is
row for row what that pass records over the same desk built unmarked."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from supportdesk.demo import build
from supportdesk.sla import clocks as sla
from tests.conftest import TEST_BACKEND

NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


Rows = list[dict[str, Any]]


def _state(desk: Any) -> tuple[Rows, Rows]:
    """Every ticket and every event, all columns, in id order."""
    with desk.db.read() as s:
        c = s.connection()
        tickets = [dict(r._mapping) for r in c.execute(sa.text("SELECT * FROM ticket ORDER BY id"))]
        events = [dict(r._mapping) for r in c.execute(sa.text("SELECT * FROM event ORDER BY id"))]
    return tickets, events


def _breaches(events: Rows) -> Rows:
    return [e for e in events if e["kind"] == "sla_breached"]


def test_demo_desk_has_its_breaches_marked_as_the_sla_pass_marks_them(
    tmp_path: Path, monkeypatch: Any, request: Any
) -> None:
    monkeypatch.setattr(build, "BATCH", 70)  # several transactions
    # the old build: nothing marked (the pass's decisions switched off while it builds)
    with monkeypatch.context() as m:
        m.setattr(sla, "tick", lambda *_a, **_k: [])
        m.setattr(sla, "breached_targets", lambda *_a, **_k: [])
        m.setattr(sla, "PAUSED", ())
        db_url = request.getfixturevalue("pg_empty_url") if TEST_BACKEND == "postgres" else None
        unmarked = build.build_demo(tmp_path / "unmarked", size=300, now=NOW, db_url=db_url)
    try:
        _tickets, events = _state(unmarked)
        assert not _breaches(events)
        recorded = sla.tick_in_batches(unmarked, NOW)  # the runner's first pass, the real one
        assert recorded > 300  # most synthetic tickets are weeks old: a catch-up
        expected = _state(unmarked)
    finally:
        unmarked.close()

    desk = build.build_demo(tmp_path / "demo", size=300, now=NOW)
    try:
        built = _state(desk)
        with desk.db.read() as s:
            assert sla.tick_candidates(s, NOW) == []
        assert sla.tick_in_batches(desk, NOW) == 0  # nothing left to catch up
        assert _state(desk) == built
    finally:
        desk.close()
    tickets, events = built
    assert tickets == expected[0]  # flags, pauses, due times: every column
    assert events == expected[1]  # the same events, same ids, data and times
    found = _breaches(events)
    assert len(found) == recorded
    # the pass's kinds of breach are all in the demo: unanswered, unresolved (running, and
    # waiting on the customer since after the deadline); and the waiting tickets' pauses
    status = {t["id"]: t["status"] for t in tickets}
    kinds = {(status[e["ticket_id"]], json.loads(e["data"])["target"]) for e in found}
    assert {("new", "first_response"), ("open", "resolution"), ("pending", "resolution")} <= kinds
    assert all(t["sla_paused_since"] is not None for t in tickets if t["status"] == "pending")


def test_story_only_demo_has_nothing_left_for_the_pass(tmp_path: Path) -> None:
    desk = build.build_demo(tmp_path / "demo", now=NOW)
    try:
        before = _state(desk)
        assert sla.tick_in_batches(desk, NOW) == 0
        assert _state(desk) == before
    finally:
        desk.close()
