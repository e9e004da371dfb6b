"""The runner's two calls into automation, and the worker that keeps rules off the intake path.

- :func:`after_inbound_commit` — called by the inbound pipeline right after a batch of messages
  has been committed. It only wakes the automation worker (a daemon thread per desk, started on
  first use) and returns at once: rules never run inside, or in the way of, an ingest.
- :func:`on_timer_tick` — called from the runner's timer tick (every few seconds, and at the end
  of ``poll --once``). It runs the whole automation pass in the calling thread: event-driven
  rules, timed rules, SLA-due notices, off-shift returns, notification delivery.

Both only ever run in the process that holds the runner lease, so one desk has one automation
worker. A lock per desk keeps the worker and the tick from running a pass at the same time.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from supportdesk.desk.desk import Desk

log = logging.getLogger(__name__)

_locks: dict[Path, threading.Lock] = {}
_workers: dict[Path, _Worker] = {}
_guard = threading.Lock()
IDLE_EXIT = 30.0  # seconds a worker waits for the next commit before it ends
WORKER_NICE = 10
SETTLE = 0.2  # seconds between a wake-up and the pass
_last_error: dict[Path, str] = {}


def _lock(desk: Desk) -> threading.Lock:
    with _guard:
        return _locks.setdefault(desk.home, threading.Lock())


class _Worker:
    def __init__(self, desk: Desk):
        self.desk = desk
        self.wake = threading.Event()
        self.passes = 0  # completed passes (tests wait on ``done`` for the next one)
        self.done = threading.Condition()
        self.thread = threading.Thread(
            target=self._run, name=f"automation:{desk.home.name}", daemon=True
        )
        self.thread.start()

    def _run(self) -> None:
        try:  # on Linux a thread has its own nice value: intake threads come first
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)
        except (OSError, AttributeError):
            pass
        while self.wake.wait(IDLE_EXIT):
            # let the intake finish what follows a commit (acknowledgement, offset confirm) and
            # gather a burst of arrivals into one pass
            time.sleep(SETTLE)
            self.wake.clear()
            try:
                run_events(self.desk)
            except Exception:
                log.exception("automation worker")
            with self.done:
                self.passes += 1
                self.done.notify_all()
        with _guard:  # idle: end the thread (the next commit starts another)
            if _workers.get(self.desk.home) is self:
                del _workers[self.desk.home]


def run_events(desk: Desk) -> None:
    """One pass over new events: rules and notifications (delivery included)."""
    from supportdesk.automation import engine, notify

    with _lock(desk):
        rep = engine.process(desk)
        if rep.notifications:
            notify.deliver(desk)


def _has_work(desk: Desk) -> bool:
    """Rules switched on, or an agent who wants notifications (a stat and a cached parse)."""
    from supportdesk.automation import settings as agent_settings
    from supportdesk.automation.rules import current_rules

    try:
        if current_rules(desk.home).enabled:
            return True
    except Exception:  # a broken rule file: the timer tick logs it once per pass
        return False
    return agent_settings.path(desk.home).exists()


def after_inbound_commit(desk: Desk) -> None:
    """Wake the automation worker: new tickets and messages are committed (returns at once).

    With no rules and no notification settings there is nothing to wake for; the timer tick
    keeps the event cursor current either way.
    """
    if not _has_work(desk):
        return
    with _guard:
        w = _workers.get(desk.home)
        if w is None or not w.thread.is_alive():
            w = _workers[desk.home] = _Worker(desk)
    w.wake.set()


def on_timer_tick(desk: Desk) -> None:
    """The timer's automation pass, in the caller's thread (errors are logged, not raised)."""
    from supportdesk.automation import engine
    from supportdesk.desk.desk import ServiceError

    try:
        with _lock(desk):
            engine.tick(desk)
        _last_error.pop(desk.home, None)
    except ServiceError as exc:  # a broken rule file: said once, not every five seconds
        if _last_error.get(desk.home) != str(exc):
            _last_error[desk.home] = str(exc)
            log.error("automation is paused: %s", exc)
    except Exception:
        log.exception("automation tick")


def wait_for_pass(desk: Desk, after: int = 0, timeout: float = 10.0) -> bool:
    """Wait until the desk's worker has completed more than ``after`` passes (for tests)."""
    with _guard:
        w = _workers.get(desk.home)
    if w is None:
        return False
    with w.done:
        return w.done.wait_for(lambda: w.passes > after, timeout)
