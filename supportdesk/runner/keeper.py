"""Keeping the runner lease while the runner works (runner/state.py has the lease itself).

``heartbeat`` is one renewal, shared by ``supportdesk run`` (its lease loop renews, or takes
over, every ``HEARTBEAT``) and by :class:`Keeper`, the thread that renews the lease during a
`poll --once` pass: a pass may run longer than the lease's 10 s (a batch of slow sends, a slow
inbound fetch, the timers), and without renewals its sends would be refused by the fence from
the 8th second on and a standby could take over halfway through.

The keeper only renews the epoch the pass took; when the lease is gone (another runner holds
it) it tells the pass (``on_lost``), which stops sending; it never takes a new epoch, since the
pass's claims belong to the new holder now. A renewal that fails (the database is unreachable)
is retried at the next heartbeat; meanwhile the fence's local deadline still guards every send.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from supportdesk.desk.desk import Desk
from supportdesk.runner import state as runtime

log = logging.getLogger("supportdesk.runner.keeper")


def heartbeat(desk: Desk, holder: str, *, renew_only: bool = False) -> int | None:
    """One renewal of the runner lease: the epoch held, 0 when another runner holds it (with
    ``renew_only``: when this process no longer holds the epoch it had), None when the renewal
    failed (logged; try again at the next heartbeat)."""
    try:
        return runtime.acquire_lease(desk, holder=holder, renew_only=renew_only)
    except Exception as exc:
        log.warning("runner lease: %s", exc)
        return None


class Keeper:
    """Renews ``epoch`` every ``interval`` seconds (by the runtime clock) in a thread, from
    ``start`` until ``stop``; ``on_lost`` runs (in that thread) once the lease is gone."""

    def __init__(
        self,
        desk: Desk,
        holder: str,
        epoch: int,
        on_lost: Callable[[], None],
        *,
        interval: float = runtime.HEARTBEAT,
    ) -> None:
        self.desk = desk
        self.holder = holder
        self.epoch = epoch
        self.on_lost = on_lost
        self.interval = interval
        self.renewals = 0
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._clock = runtime.clock()

    def start(self) -> None:
        # the first deadline is taken now, not when the thread first runs
        first = self._clock.monotonic() + self.interval
        self._thread = threading.Thread(
            target=self._run, args=(first,), name="lease-keeper", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing and wait for the thread (a renewal under way finishes first)."""
        self._stop.set()
        self._clock.wake()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self, deadline: float) -> None:
        # after a loss the thread idles until stopped: a test clock's advance() knows where it is
        while not self._clock.sleep_until(deadline, self._stop):
            if not self.lost:
                self._beat()
            deadline = self._clock.monotonic() + self.interval

    def _beat(self) -> None:
        got = heartbeat(self.desk, self.holder, renew_only=True)
        if got is None:
            return  # unreachable now: the fence's local deadline guards the sends meanwhile
        if got == self.epoch:
            self.renewals += 1
            return
        self.lost = True
        log.warning("runner lease lost during the pass (epoch %d); not sending", self.epoch)
        try:
            self.on_lost()
        except Exception:
            log.exception("stopping the pass after losing the lease")


@contextmanager
def kept(desk: Desk, holder: str, epoch: int, on_lost: Callable[[], None]) -> Iterator[Keeper]:
    """Renew ``epoch`` inside the block; the keeper stops when the block ends, errors too."""
    keeper = Keeper(desk, holder, epoch, on_lost)
    keeper.start()
    try:
        yield keeper
    finally:
        keeper.stop()
