"""Live change notifications reach a watcher from other connections, on both backends."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from supportdesk.desk.desk import open_desk
from supportdesk.people import presence
from supportdesk.tickets import live, triage
from tests.factories import inbound_email, ingest


def _collect(watcher: live.Watcher, want: Any, timeout: float = 10.0) -> list[live.Change]:
    """Changes until ``want(changes)`` holds (bounded)."""
    got: list[live.Change] = []
    deadline = time.monotonic() + timeout
    while not want(got):
        left = deadline - time.monotonic()
        assert left > 0, f"timed out; saw {got}"
        got.extend(watcher.wait(min(left, 1.0)))
    return got


def test_watcher_sees_audited_changes_and_presence(team_desk: Any, home: Any, db_url: Any) -> None:
    t = ingest(team_desk, inbound_email(subject="Принтер")).ticket_id
    with live.Watcher(team_desk) as watcher:
        assert watcher.wait(0.3) == []  # quiet: nothing happened since it started
        # a second process-like desk (own engines and connections) makes the changes
        other = open_desk(home, agent="bob", db_url=db_url)
        try:
            triage.tag(other, [t], add=["vip"])
            got = _collect(watcher, lambda g: any(c.kind == "tag" for c in g))
            assert {c.ticket_id for c in got if c.kind == "tag"} == {t}
            assert all(c.event_id for c in got if c.kind == "tag")

            presence.heartbeat(other, t, "replying")
            got = _collect(watcher, lambda g: any(c.kind == "presence" for c in g))
            assert live.Change("presence", t) in got

            # a heartbeat that only extends the lease is not news on PostgreSQL; on SQLite at
            # most a generic "changed"
            presence.heartbeat(other, t, "replying")
            assert all(c.kind in ("changed",) for c in watcher.wait(0.5))

            presence.leave(other, t)
            got = _collect(watcher, lambda g: any(c.kind == "presence" for c in g))
            assert live.Change("presence", t) in got
        finally:
            other.close()


def test_inbound_message_wakes_a_waiting_watcher_at_once(team_desk: Any) -> None:
    with live.Watcher(team_desk) as watcher:
        result: list[live.Change] = []
        started = threading.Event()

        def waiter() -> None:
            started.set()
            result.extend(_collect(watcher, lambda g: any(c.ticket_id for c in g)))

        th = threading.Thread(target=waiter)
        th.start()
        started.wait(5)
        tid = ingest(team_desk, inbound_email(subject="New one")).ticket_id
        th.join(10)  # woken by the change (how fast is measured in bench/)
        assert not th.is_alive()
        assert any(c.ticket_id == tid for c in result)


def test_notify_sends_a_custom_signal(team_desk: Any) -> None:
    with live.Watcher(team_desk) as watcher:
        with team_desk.db.write() as s:
            live.notify(s, "refresh", 42)
        with team_desk.db.write() as s:
            live.notify(s, "refresh", 43)
            live.notify(s, "reload", None)
        got = _collect(watcher, lambda g: len(g) >= 3)
        assert got == [
            live.Change("refresh", 42),
            live.Change("refresh", 43),
            live.Change("reload", None),
        ]


def test_watch_iterator_stops(team_desk: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    stop = threading.Event()
    ready = threading.Event()

    class ReadyWatcher(live.Watcher):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            ready.set()  # watching from here on

    monkeypatch.setattr(live, "Watcher", ReadyWatcher)
    batches: list[list[live.Change]] = []

    def run() -> None:
        for batch in live.watch(team_desk, stop=stop, timeout=0.2):
            batches.append(batch)
            stop.set()

    th = threading.Thread(target=run)
    th.start()
    assert ready.wait(10), "the watcher never started"
    ingest(team_desk, inbound_email(subject="x"))
    th.join(10)
    assert not th.is_alive()
    assert batches and any(c.kind == "created" or c.ticket_id for c in batches[0])
