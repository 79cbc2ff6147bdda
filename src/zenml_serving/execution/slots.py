"""ExecutionSlots: a fair concurrency limit with a bounded waiting line and honest accounting.

Written by hand because asyncio.Semaphore neither exposes its waiting line (we must answer
429 *before* queueing when the line is full) nor lets a slot outlive the coroutine that took it
(a timed-out step keeps running on its thread, and its slot must stay counted until it returns,
so no new execution barges past the limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque

__all__ = ["ExecutionSlots", "OverloadedError", "Slot", "give_up"]


class OverloadedError(Exception):
    """Every slot is busy and the waiting line is full."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"overloaded; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class Slot:
    """One execution's claim on the limit; release exactly once."""

    __slots__ = ("_owner", "_released", "orphaned")

    def __init__(self, owner: ExecutionSlots) -> None:
        self._owner = owner
        self._released = False
        self.orphaned = False
        """The caller gave up (timeout/cancel) but the step is still running on its thread."""

    def orphan(self) -> None:
        """Mark that nobody waits for this execution any more; the slot stays held."""
        if not self._released and not self.orphaned:
            self.orphaned = True
            self._owner.orphaned += 1

    def release(self) -> None:
        """Give the slot back (idempotent)."""
        if self._released:
            return
        self._released = True
        if self.orphaned:
            self._owner.orphaned -= 1
        self._owner._release()


class ExecutionSlots:
    """At most `limit` executions at once and `max_waiting` waiting; first come, first served."""

    def __init__(self, limit: int, max_waiting: int) -> None:
        self.limit = limit
        self.max_waiting = max_waiting
        self.in_use = 0
        self.orphaned = 0
        self._waiters: deque[asyncio.Future[Slot]] = deque()
        self._mean_duration_s = 0.0
        self._closed = False

    @property
    def waiting(self) -> int:
        """Executions waiting for a slot."""
        return len(self._waiters)

    def record_duration(self, seconds: float) -> None:
        """Feed the moving average that Retry-After is computed from."""
        alpha = 0.2
        if self._mean_duration_s == 0.0:
            self._mean_duration_s = seconds
        else:
            self._mean_duration_s += alpha * (seconds - self._mean_duration_s)

    def retry_after_s(self) -> int:
        """Seconds until a slot is likely free for a new arrival, from the line and recent runs."""
        rounds = (self.waiting + 1) / max(self.limit, 1)
        return max(1, min(3600, math.ceil(rounds * self._mean_duration_s)))

    @property
    def full(self) -> bool:
        """No slot and no place in line is free: `reserve()` would raise OverloadedError."""
        busy = self.in_use >= self.limit or bool(self._waiters)
        return busy and self.waiting >= self.max_waiting

    def reserve(self) -> Slot | asyncio.Future[Slot]:
        """Claim a slot now (returned directly) or a place in line (a future resolving to the
        Slot when it is this claim's turn); raise OverloadedError if neither is free.

        Cancel the future (or call `give_up`) to leave the line; a slot handed over at that
        moment is passed on.
        """
        if self._closed:
            raise RuntimeError("execution slots are closed")
        if self.in_use < self.limit and not self._waiters:
            self.in_use += 1
            return Slot(self)
        if self.waiting >= self.max_waiting:
            raise OverloadedError(self.retry_after_s())
        future: asyncio.Future[Slot] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        future.add_done_callback(self._on_waiter_done)
        return future

    def close(self, error: BaseException) -> int:
        """Refuse new work and fail every waiter with `error`; return how many were waiting."""
        self._closed = True
        count = 0
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)
                waiter.exception()  # retrieved here: a waiter nobody awaits any more is fine
                count += 1
        return count

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(Slot(self))  # the slot passes straight to the next in line
                return
        self.in_use -= 1

    def _on_waiter_done(self, waiter: asyncio.Future[Slot]) -> None:
        if waiter.cancelled():
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)


def give_up(reservation: Slot | asyncio.Future[Slot]) -> None:
    """Leave the line (or drop the slot); a slot handed over in the meantime is given back."""
    if isinstance(reservation, Slot):
        reservation.release()
    elif not reservation.done():
        reservation.cancel()
    elif not reservation.cancelled() and reservation.exception() is None:
        reservation.result().release()
