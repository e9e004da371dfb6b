"""A monotonic clock for the runner lease that moves only when a test moves it."""

from __future__ import annotations

import threading

from supportdesk.runner import state as runtime

SETTLE = 30.0  # real seconds a woken thread gets to do its work and wait again


class StepClock(runtime.Clock):
    """``advance(s)``: time passes and every thread whose wait it ends (the lease keeper) runs
    its turn; ``advance`` returns once they all wait again (no sleeping, no polling).
    ``jump(s)``: time passes while nobody gets a turn (a keeper held up by a slow database),
    until the next ``advance``."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._alarm = start  # what the sleepers see: the time as of the last advance()
        self._cond = threading.Condition()
        self._asleep: dict[int, float] = {}  # thread -> the deadline it waits for
        self._busy: set[int] = set()  # woken by an advance, not waiting again yet

    def monotonic(self) -> float:
        with self._cond:
            return self._now

    def sleep_until(self, deadline: float, stop: threading.Event) -> bool:
        me = threading.get_ident()
        with self._cond:
            self._busy.discard(me)
            self._asleep[me] = deadline
            self._cond.notify_all()
            while not stop.is_set() and self._alarm < deadline:
                self._cond.wait()
            del self._asleep[me]
            if not stop.is_set():
                self._busy.add(me)
            self._cond.notify_all()
            return stop.is_set()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def advance(self, seconds: float, *, sleepers: int = 1) -> None:
        """Move time on once ``sleepers`` threads wait on this clock; return when every thread
        woken has had its turn and waits again."""
        with self._cond:
            assert self._cond.wait_for(lambda: len(self._asleep) >= sleepers, SETTLE), (
                f"expected {sleepers} thread(s) (a lease keeper) waiting on the clock, "
                f"{len(self._asleep)} are"
            )
            self._now += seconds
            self._alarm = self._now
            self._cond.notify_all()
            settled = self._cond.wait_for(
                lambda: not self._busy and all(d > self._alarm for d in self._asleep.values()),
                SETTLE,
            )
            assert settled, "a thread woken by the clock did not wait again"

    def jump(self, seconds: float) -> None:
        with self._cond:
            self._now += seconds
