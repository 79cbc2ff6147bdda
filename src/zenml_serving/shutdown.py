"""Start draining the moment the process is asked to stop, not when the server gets round to it.

granian, on SIGTERM, first waits for every open HTTP request to finish and only then runs the
ASGI lifespan shutdown. Requests waiting in our queue would be served during that wait (or cut
off at the kill timeout) instead of being answered 503 at once so that clients retry
elsewhere. So we also hook SIGTERM/SIGINT at the Python level: asyncio (and uvloop) deliver the
signal to granian's loop handler through the wakeup fd regardless of the Python-level handler,
so both run; ours only schedules `on_signal` on the event loop and chains to any previous
Python-level handler that is not the default.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType

__all__ = ["DrainSignals"]

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class DrainSignals:
    """Installs and removes the Python-level SIGTERM/SIGINT hooks for one app lifespan."""

    def __init__(self, on_signal: Callable[[], None]) -> None:
        self._on_signal = on_signal
        self._previous: dict[int, Any] = {}

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
        return True

    def remove(self) -> None:
        """Restore the handlers that were there before."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, previous in self._previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()
