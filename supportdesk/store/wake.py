"""Outbox wake-ups across processes: the runner's delivery workers hear of a reply that another
process (an agent's console, the CLI, a script) queued, instead of finding it at their poll.

An ``OutboxWaker`` runs in a thread of its own while the runner holds the desk's lease and
calls ``on_due(channels)`` soon after another connection commits: with the names of the
channels that have due queued rows, or with None ("any channel may": right after it starts
and after every reconnection, since something may have been queued while it was not looking).

* PostgreSQL: ``LISTEN`` on migration 0003's channel, on a connection of its own (autocommit,
  so no transaction is ever left open; TCP keepalives, so a dead server is noticed). Every change
  that queues an outbox row records an audit event in the same transaction (reply, auto_reply,
  forward, notified, outbox_resend ...), and that migration's trigger NOTIFYs each new audit
  event on commit. On notifications other than presence the waker asks which channels have due
  rows (``DUE_CHANNELS``: a read on the ``outbox(state, next_attempt_at)`` index) and wakes
  those. A lost connection is opened again after a growing pause (0.5 s, doubling, at most
  ``RECONNECT_CAP``); the thread blocks in ``select`` on the connection and a stop socket, so it
  costs nothing while the desk is quiet and stops at once.
* SQLite: no server to push. A connection of its own reads ``PRAGMA data_version`` every
  ``SQLITE_INTERVAL``: the number moves when any other connection commits (about 2 us to read;
  it takes no lock and holds no transaction, so checkpoints are never held back). Only when it
  moved does the waker run ``DUE_CHANNELS``. The runner's own writes (the lease heartbeat, once
  a second) move it too; the query keeps those from waking anyone.

A wake-up is a hint and nothing more: what it costs is one claim by a delivery worker, which
finds nothing when nothing is due. Losing one (a dropped connection; a row inserted by plain SQL
without an audit event on PostgreSQL) leaves the row to the workers' poll. Nothing outside the
database can cause one: there is no file or socket in the desk's home to write to.
"""

from __future__ import annotations

import json
import logging
import random
import select
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from supportdesk.store.db import Database
from supportdesk.store.models import utcnow
from supportdesk.store.reads import sqlite_utc_text

log = logging.getLogger("supportdesk.store.wake")

EVENTS_CHANNEL = "supportdesk"  # migration 0003's NOTIFY channel (tickets/live.py LISTENs too)
SQLITE_INTERVAL = 0.1  # seconds between looks at PRAGMA data_version
RECONNECT_CAP = 30.0  # PostgreSQL: the longest pause between tries to connect again
STEADY = 30.0  # a connection that lived this long resets the reconnection pauses
# the channels with queued rows that are due now; {p} is the driver's placeholder
DUE_CHANNELS = (
    "SELECT DISTINCT channel FROM outbox WHERE state = 'queued' "
    "AND (next_attempt_at IS NULL OR next_attempt_at <= {p})"
)

OnDue = Callable[[set[str] | None], None]


class OutboxWaker:
    """Calls ``on_due`` when another connection may have queued due outbox rows. ``run()`` is
    a thread's body; ``stop()`` (from any thread) ends it."""

    def __init__(self, db: Database, on_due: OnDue, *, interval: float = SQLITE_INTERVAL):
        self.db = db
        self.on_due = on_due
        self.interval = interval
        self.ready = threading.Event()  # set once it watches (each connection sets it again)
        self.connections = 0  # connections made so far (PostgreSQL: one more per reconnection)
        self._stopped = threading.Event()
        self._stop_r, self._stop_w = socket.socketpair()

    def stop(self) -> None:
        self._stopped.set()
        try:
            self._stop_w.send(b"x")
        except OSError:  # already closed: run() has ended
            pass

    def run(self) -> None:
        try:
            if self.db.dialect == "sqlite":
                self._run_sqlite()
            elif self.db.dialect == "postgresql":
                self._run_postgres()
        except Exception:  # the workers' poll still delivers everything
            log.exception("outbox wake-ups stopped; replies go out at the poll")
        finally:
            self._stop_r.close()
            self._stop_w.close()

    def _due(self, rows: list[Any]) -> None:
        due = {str(r[0]) for r in rows}
        if due:
            self.on_due(due)

    # ---- SQLite ----------------------------------------------------------------------------
    def _run_sqlite(self) -> None:
        path = sa.engine.make_url(self.db.url).database
        if not path or path == ":memory:":
            return  # no other connection can see this database
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5)
        try:
            conn.execute("PRAGMA query_only=ON")
            version = _data_version(conn)
            self.connections += 1
            self.ready.set()
            self.on_due(None)
            while not self._wait_stop(self.interval):
                try:
                    now = _data_version(conn)
                    if now == version:
                        continue
                    version = now
                    sql = DUE_CHANNELS.format(p="?")
                    self._due(conn.execute(sql, (sqlite_utc_text(utcnow()),)).fetchall())
                except sqlite3.Error as exc:  # busy, or briefly unavailable: look again
                    log.debug("outbox wake-ups: %s", exc)
        finally:
            conn.close()

    # ---- PostgreSQL ------------------------------------------------------------------------
    def _run_postgres(self) -> None:
        import psycopg

        failures = 0
        while not self._stopped.is_set():
            opened = time.monotonic()
            try:
                conn = self._connect()
            except psycopg.Error as exc:
                failures += 1
                log.info("outbox wake-ups: cannot connect (%s); the poll delivers meanwhile", exc)
            else:
                try:
                    self._listen(conn)
                    return  # stopped
                except psycopg.Error as exc:
                    if self._stopped.is_set():
                        return
                    log.info("outbox wake-ups: connection lost (%s); connecting again", exc)
                    failures = 1 if time.monotonic() - opened >= STEADY else failures + 1
                finally:
                    conn.close()
            pause = min(0.5 * 2 ** (failures - 1), RECONNECT_CAP) * random.uniform(0.75, 1.0)
            if self._wait_stop(pause):
                return

    def _connect(self) -> Any:
        import psycopg

        url = sa.engine.make_url(self.db.url).set(drivername="postgresql")
        return psycopg.connect(
            url.render_as_string(hide_password=False),
            autocommit=True,  # LISTEN and the due query each end at once: no open transaction
            connect_timeout=10,
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
            application_name="supportdesk outbox wake-ups",
        )

    def _listen(self, conn: Any) -> None:
        """Until stopped (returns) or the connection fails (raises psycopg.Error)."""
        conn.execute(f"LISTEN {EVENTS_CHANNEL}")
        self.connections += 1
        self.ready.set()
        self.on_due(None)  # whatever was queued before the LISTEN took hold
        sql = DUE_CHANNELS.format(p="%s")
        while not self._stopped.is_set():
            # first whatever arrived meanwhile (also during the last query): timeout=0 reads
            # what libpq holds and the socket has, without waiting
            got = [n for n in conn.notifies(timeout=0) if not _presence(n.payload)]
            if got:
                now = utcnow().replace(tzinfo=None)
                self._due(conn.execute(sql, (now,)).fetchall())
                continue
            ready, _, _ = select.select([conn.fileno(), self._stop_r], [], [])
            if self._stop_r in ready:
                return

    def _wait_stop(self, seconds: float) -> bool:
        ready, _, _ = select.select([self._stop_r], [], [], seconds)
        return bool(ready) or self._stopped.is_set()


def _data_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA data_version").fetchall()[0][0])


def _presence(payload: str) -> bool:
    """A presence notification (an agent opened or left a ticket): it never queues a reply."""
    try:
        return bool(json.loads(payload).get("kind") == "presence")
    except (ValueError, AttributeError):
        return False


__all__ = ["DUE_CHANNELS", "EVENTS_CHANNEL", "OnDue", "OutboxWaker"]
