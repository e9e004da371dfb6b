"""Live change notifications: what changed on the desk, for consoles that stay open.

Every audited change (``events.record``) and every presence change reaches the watchers:

* PostgreSQL: triggers from migration 0003 ``NOTIFY supportdesk`` with a small JSON payload for
  each new audit event and each presence row that appears, goes or changes activity; a
  ``Watcher`` ``LISTEN``s on its own connection and wakes at once.
* SQLite: there is no server to push. A ``Watcher`` keeps one read-only connection and polls
  ``PRAGMA data_version`` (a counter that moves when any other connection commits; reading it
  costs microseconds and takes no lock). Only when it moved does it read the audit events after
  the last one it saw, and the (small) presence table.

Use from a console (in a thread worker)::

    with live.Watcher(desk) as watcher:
        while not worker.is_cancelled:
            changes = watcher.wait(1.0)        # [] after a quiet second
            if changes:
                app.call_from_thread(app.on_desk_changes, changes)

``Change.kind`` is the audit event kind (``message_in``, ``assign``, ``reply``, ``delivered``…),
``"presence"`` for presence, or ``"changed"`` when something changed that carries no detail (an
unaudited write, a lost connection): reload what is on screen. ``notify(session, kind,
ticket_id)`` sends an extra signal from inside a write transaction (delivered on commit).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from supportdesk.desk.desk import Desk
from supportdesk.store.models import Meta

CHANNEL = "supportdesk"
POLL_INTERVAL = 0.25  # SQLite: how often data_version is read while waiting
MAX_BATCH = 1000  # events read at once; more are picked up by the next wait
SIGNALS_KEY = "live.signals"  # SQLite: notify()'s recent signals, in the meta table
KEEP_SIGNALS = 100


@dataclass(frozen=True)
class Change:
    kind: str
    ticket_id: int | None = None
    event_id: int | None = None


def notify(session: Session, kind: str, ticket_id: int | None = None) -> None:
    """Signal watchers from inside a write transaction; sent when it commits.

    On PostgreSQL this is a NOTIFY with ``kind`` and ``ticket_id``. On SQLite the signal is kept
    in the ``meta`` row ``live.signals`` (the last ``KEEP_SIGNALS``), which watchers read when the
    database changed.
    """
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        payload = json.dumps({"kind": kind, "ticket_id": ticket_id})
        session.execute(sa.text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": payload})
        return
    row = session.get(Meta, SIGNALS_KEY) or Meta(key=SIGNALS_KEY, value="[]")
    try:
        signals = list(json.loads(row.value or "[]"))
    except ValueError:
        signals = []
    seq = int(signals[-1]["n"]) + 1 if signals else 1
    signals.append({"n": seq, "kind": kind, "ticket_id": ticket_id})
    row.value = json.dumps(signals[-KEEP_SIGNALS:])
    session.add(row)


def _parse_payload(payload: str) -> Change:
    try:
        data = json.loads(payload)
        tid = data.get("ticket_id")
        eid = data.get("event_id")
        return Change(
            str(data.get("kind") or "changed"),
            int(tid) if tid is not None else None,
            int(eid) if eid is not None else None,
        )
    except (ValueError, TypeError, AttributeError):
        return Change("changed")


class Watcher:
    """Waits for changes on one desk. Not thread-safe: one thread calls ``wait``."""

    def __init__(self, desk: Desk, *, poll_interval: float = POLL_INTERVAL):
        self.desk = desk
        self.poll_interval = poll_interval
        self.dialect = desk.db.dialect
        self._closed = False
        self._conn: Any = None
        self._pending: list[Change] = []
        if self.dialect == "sqlite":
            self._open_sqlite()
        elif self.dialect == "postgresql":
            self._open_postgres()
        else:  # pragma: no cover - only SQLite and PostgreSQL are supported stores
            raise ValueError(f"live updates need SQLite or PostgreSQL, not {self.dialect}")

    # ---- SQLite ----------------------------------------------------------------------------
    def _open_sqlite(self) -> None:
        path = sa.engine.make_url(self.desk.db.url).database or ""
        self._conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._version = self._data_version()
        row = self._conn.execute("SELECT MAX(id) FROM event").fetchone()
        self._last_event = int(row[0] or 0)
        self._presence = self._presence_rows()
        signals = self._signals()
        self._last_signal = int(signals[-1]["n"]) if signals else 0

    def _signals(self) -> list[dict[str, Any]]:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (SIGNALS_KEY,)).fetchone()
        try:
            return list(json.loads(row[0])) if row and row[0] else []
        except ValueError:
            return []

    def _data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def _presence_rows(self) -> dict[int, frozenset[tuple[str, str]]]:
        out: dict[int, set[tuple[str, str]]] = {}
        for tid, agent, activity in self._conn.execute(
            "SELECT ticket_id, agent, activity FROM presence"
        ):
            out.setdefault(int(tid), set()).add((str(agent), str(activity)))
        return {k: frozenset(v) for k, v in out.items()}

    def _sqlite_changes(self) -> list[Change]:
        version = self._data_version()
        if version == self._version:
            return []
        self._version = version
        out: list[Change] = []
        rows = self._conn.execute(
            "SELECT id, kind, ticket_id FROM event WHERE id > ? ORDER BY id LIMIT ?",
            (self._last_event, MAX_BATCH),
        ).fetchall()
        for eid, kind, tid in rows:
            out.append(Change(str(kind), int(tid) if tid is not None else None, int(eid)))
        if rows:
            self._last_event = int(rows[-1][0])
            if len(rows) == MAX_BATCH:
                self._version = -1  # more to read: look again on the next wait
        for sig in self._signals():
            if int(sig.get("n", 0)) > self._last_signal:
                self._last_signal = int(sig["n"])
                tid = sig.get("ticket_id")
                out.append(Change(str(sig.get("kind") or "changed"), int(tid) if tid else None))
        presence = self._presence_rows()
        if presence != self._presence:
            for tid in sorted(set(presence) | set(self._presence)):
                if presence.get(tid) != self._presence.get(tid):
                    out.append(Change("presence", tid))
            self._presence = presence
        return out or [Change("changed")]

    # ---- PostgreSQL ------------------------------------------------------------------------
    def _open_postgres(self) -> None:
        import psycopg

        url = sa.engine.make_url(self.desk.db.url).set(drivername="postgresql")
        self._conn = psycopg.connect(
            url.render_as_string(hide_password=False),
            autocommit=True,
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
        )
        self._conn.execute(f"LISTEN {CHANNEL}")

    def _pg_changes(self, timeout: float) -> list[Change]:
        import psycopg

        try:
            out = [
                _parse_payload(n.payload)
                for n in self._conn.notifies(timeout=max(timeout, 0.0), stop_after=1)
            ]
            # drain whatever else has arrived, without waiting
            out.extend(_parse_payload(n.payload) for n in self._conn.notifies(timeout=0))
            return out
        except psycopg.OperationalError:
            # the connection is gone: notifications may have been lost, so ask for a reload
            try:
                self._conn.close()
            except Exception:
                pass
            time.sleep(min(timeout, 1.0))
            try:
                self._open_postgres()
            except psycopg.OperationalError:
                self._conn = _Broken()
            return [Change("changed")]

    # ---- API -------------------------------------------------------------------------------
    def wait(self, timeout: float) -> list[Change]:
        """Changes since the last call, waiting up to ``timeout`` seconds for the first one."""
        if self._closed:
            raise RuntimeError("this watcher is closed")
        if self.dialect == "postgresql":
            if isinstance(self._conn, _Broken):
                time.sleep(min(timeout, 1.0))
                try:
                    self._open_postgres()
                except Exception:
                    return []
                return [Change("changed")]
            return self._pg_changes(timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                changes = self._sqlite_changes()
            except sqlite3.OperationalError:
                changes = []  # busy or briefly unavailable: look again
            if changes:
                return changes
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            time.sleep(min(self.poll_interval, left))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._conn.close()
            except Exception:
                pass

    def __enter__(self) -> Watcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Broken:
    """Stands in for a PostgreSQL connection that could not be re-opened yet."""

    def close(self) -> None:
        pass


def watch(
    desk: Desk, *, stop: threading.Event | None = None, timeout: float = 1.0
) -> Iterator[list[Change]]:
    """Yield each non-empty batch of changes until ``stop`` is set (checked every ``timeout``)."""
    stop = stop or threading.Event()
    with Watcher(desk) as watcher:
        while not stop.is_set():
            changes = watcher.wait(timeout)
            if changes:
                yield changes


__all__ = ["CHANNEL", "Change", "Watcher", "notify", "watch"]
