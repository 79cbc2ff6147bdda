"""Start draining the moment the process is asked to stop, not when the server gets round to it.

granian, on SIGTERM, first waits for every open HTTP request to finish and only then runs the
ASGI lifespan shutdown. Requests waiting in our queue would be served during that wait (or cut
off at the kill timeout) instead of being answered 503 at once so that clients retry
elsewhere. So we also hook SIGTERM/SIGINT at the Python level: asyncio (and uvloop) deliver the
signal to granian's loop handler through the wakeup fd regardless of the Python-level handler,
so both run; ours only schedules `on_signal` on the event loop and chains to any previous
Python-level handler that is not the default.

WebSockets need one more step. granian drops every WebSocket connection the moment its worker
is told to stop (it waits for HTTP requests only), without a close frame, so a client that
follows a job over a socket learns nothing. With a `farewell` (say goodbye on every socket),
SIGTERM is taken at the event loop instead of granian: drain, run the farewell (at most
`FAREWELL_S`), then hand the stop to granian as SIGINT, which it handles the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from types import FrameType

__all__ = ["FAREWELL_S", "DrainSignals"]

_SIGNALS = (signal.SIGTERM, signal.SIGINT)
FAREWELL_S = 2.0


class DrainSignals:
    """Installs and removes the Python-level SIGTERM/SIGINT hooks for one app lifespan."""

    def __init__(
        self,
        on_signal: Callable[[], None],
        farewell: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._on_signal = on_signal
        self._farewell = farewell
        self._previous: dict[int, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._farewell_task: asyncio.Task[None] | None = None

    def install(self) -> bool:
        """Install the hooks (only possible on the main thread); return whether they are on."""
        if threading.current_thread() is not threading.main_thread():
            return False
        loop = asyncio.get_running_loop()

        def handler(signum: int, frame: FrameType | None) -> None:
            loop.call_soon_threadsafe(self._on_signal)
            previous = self._previous.get(signum)
            if callable(previous):
                previous(signum, frame)

        for sig in _SIGNALS:
            self._previous[sig] = signal.signal(sig, handler)
        if self._farewell is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGTERM, self._stop_with_farewell)
                self._loop = loop
        return True

    def _stop_with_farewell(self) -> None:
        """SIGTERM at the event loop: drain, say goodbye, then let the server stop."""
        self._on_signal()
        if self._farewell_task is None and self._farewell is not None:
            self._farewell_task = asyncio.ensure_future(self._say_farewell(self._farewell))

    async def _say_farewell(self, farewell: Callable[[], Awaitable[None]]) -> None:
        with contextlib.suppress(Exception, asyncio.TimeoutError):
            await asyncio.wait_for(farewell(), FAREWELL_S)
        os.kill(os.getpid(), signal.SIGINT)  # the server's own graceful stop

    def remove(self) -> None:
        """Restore the handlers that were there before."""
        if threading.current_thread() is not threading.main_thread():
            return
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_signal_handler(signal.SIGTERM)
            self._loop = None
        for sig, previous in self._previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()
