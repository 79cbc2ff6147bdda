"""A thread-safe cancellation token with an optional deadline, checked between steps."""

from __future__ import annotations

import threading
import time

__all__ = ["CancellationToken", "InvocationCancelledError", "InvocationTimeoutError"]


class InvocationCancelledError(Exception):
    """The invocation was cancelled before `next_step` could start."""

    def __init__(self, reason: str, next_step: str | None) -> None:
        where = f" before step '{next_step}'" if next_step else ""
        super().__init__(f"invocation cancelled{where}: {reason}")
        self.reason = reason
        self.next_step = next_step


class InvocationTimeoutError(InvocationCancelledError):
    """The invocation ran past its deadline."""


class CancellationToken:
    """Set once by whoever wants the invocation to stop; read by the engine between steps.

    A step already running on a worker thread cannot be interrupted; the token guarantees
    that no *later* step starts and that retry back-off sleeps end early. One is made per
    invocation, so the `threading.Event` that sleeps need is created only when a step sleeps
    (a retry back-off), not for every request.
    """

    __slots__ = ("_lock", "_reason", "_set", "_timed_out", "_wakeup", "deadline")

    def __init__(self, deadline: float | None = None) -> None:
        self._set = False
        self._reason = ""
        self._timed_out = False
        self._lock = threading.Lock()
        self._wakeup: threading.Event | None = None
        self.deadline = deadline
        """`time.monotonic()` value after which the invocation counts as timed out."""

    @classmethod
    def with_timeout(cls, seconds: float | None) -> CancellationToken:
        """A token whose deadline is `seconds` from now (none if `seconds` is None)."""
        return cls(None if seconds is None else time.monotonic() + seconds)

    def cancel(self, reason: str, *, timed_out: bool = False) -> None:
        """Ask the invocation to stop; the first reason given wins."""
        with self._lock:
            if self._set:
                return
            self._reason = reason
            self._timed_out = timed_out
            self._set = True
            wakeup = self._wakeup
        if wakeup is not None:
            wakeup.set()

    @property
    def cancelled(self) -> bool:
        """Whether cancel() was called or the deadline has passed."""
        return self._set or self._past_deadline()

    def raise_if_stopped(self, next_step: str | None = None) -> None:
        """Raise if the invocation must not go on to `next_step`."""
        if self._past_deadline():
            self.cancel("deadline exceeded", timed_out=True)
        if self._set:
            error = InvocationTimeoutError if self._timed_out else InvocationCancelledError
            raise error(self._reason, next_step)

    def sleep(self, seconds: float) -> None:
        """Sleep up to `seconds`, waking early when cancelled or at the deadline."""
        if self.deadline is not None:
            seconds = min(seconds, max(0.0, self.deadline - time.monotonic()))
        with self._lock:
            if self._set:
                return
            if self._wakeup is None:
                self._wakeup = threading.Event()
            wakeup = self._wakeup
        wakeup.wait(seconds)

    def _past_deadline(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline
