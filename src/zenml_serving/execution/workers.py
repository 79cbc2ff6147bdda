"""WorkerThreads: the threads that run pipeline steps, handing results back to the loop.

Hand-written instead of `loop.run_in_executor(ThreadPoolExecutor(...))`: per request that path
builds a concurrent Future with its lock and condition, a work item, and a second (asyncio)
future chained to the first; profiling the sync path showed it among the largest costs of a
request. Here a job is a queue item and the result goes straight into one asyncio future with
`call_soon_threadsafe`. Threads are started on demand, up to `max_threads` (the execution slot
limit guarantees no more jobs run at once).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["WorkerThreads"]

_STOP = None


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class WorkerThreads:
    """A fixed-ceiling pool of daemon threads fed by a SimpleQueue."""

    def __init__(self, max_threads: int, name: str = "zenml-serving-step") -> None:
        self._max = max_threads
        self._name = name
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[[], Any]) -> asyncio.Future[Any]:
        """Run `fn()` on a worker thread; its result or exception settles the returned future."""
        if self._closed:
            raise RuntimeError("worker threads are closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            if self._idle > 0:
                self._idle -= 1  # an idle thread will take it
            elif len(self._threads) < self._max:
                self._spawn()
            # else: every thread is busy; the job waits in the queue for the first free one
        self._jobs.put((fn, loop, future))
        return future

    def close(self) -> None:
        """Let every thread finish its current job and exit (does not wait for them)."""
        self._closed = True
        for _ in self._threads:
            self._jobs.put(_STOP)

    def _spawn(self) -> None:
        thread = threading.Thread(
            target=self._work, name=f"{self._name}-{len(self._threads) + 1}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        jobs = self._jobs
        while True:
            item = jobs.get()
            if item is _STOP:
                return
            fn, loop, future = item
            result: Any = None
            error: BaseException | None = None
            try:
                result = fn()
            except BaseException as exc:
                error = exc
            try:  # noqa: SIM105 - on every request: cheaper than contextlib.suppress
                loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:
                pass  # the loop is closed: nobody is waiting any more
            del fn, future, result, error, item
            with self._lock:
                self._idle += 1
