"""StopSignal and `race`: waiting for the first of "done", "stop" and "deadline" without tasks.

The obvious asyncio spelling (`asyncio.Event` + `asyncio.wait({future, event.wait()},
timeout=...)`) creates a task and several futures per request; on the sync request path that
was a measurable share of a request's CPU time. Here one future is awaited and callbacks wake
it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["StopSignal", "race"]

Outcome = Literal["done", "stop", "timeout"]


class StopSignal:
    """Set once (by a cancel request, a client that went away, or draining); runs callbacks."""

    __slots__ = ("_callbacks", "_set")

    def __init__(self) -> None:
        self._set = False
        self._callbacks: list[Callable[[], None]] = []

    def set(self) -> None:
        """Set the signal and run every registered callback (once)."""
        if self._set:
            return
        self._set = True
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def is_set(self) -> bool:
        """Whether the signal was set."""
        return self._set

    def add_callback(self, callback: Callable[[], None]) -> None:
        """Run `callback` when the signal is set (now, if it already is)."""
        if self._set:
            callback()
        else:
            self._callbacks.append(callback)

    def remove_callback(self, callback: Callable[[], None]) -> None:
        """Forget `callback` (no error if it is not registered)."""
        try:  # noqa: SIM105 - on every request: cheaper than contextlib.suppress
            self._callbacks.remove(callback)
        except ValueError:
            pass


async def race(awaited: asyncio.Future[object], stop: StopSignal, timeout: float | None) -> Outcome:
    """Wait until `awaited` is done, `stop` is set or `timeout` seconds pass; say which."""
    if awaited.done():
        return "done"
    if stop.is_set():
        return "stop"
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[Outcome] = loop.create_future()

    def on_done(_: object) -> None:
        if not waiter.done():
            waiter.set_result("done")

    def on_stop() -> None:
        if not waiter.done():
            waiter.set_result("stop")

    def on_timeout() -> None:
        if not waiter.done():
            waiter.set_result("timeout")

    awaited.add_done_callback(on_done)
    stop.add_callback(on_stop)
    timer = loop.call_later(timeout, on_timeout) if timeout is not None else None
    try:
        return await waiter
    finally:
        if timer is not None:
            timer.cancel()
        stop.remove_callback(on_stop)
        awaited.remove_done_callback(on_done)
