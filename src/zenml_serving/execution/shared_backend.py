"""What the job backends shared by several processes (SQLite on one host, Redis across hosts)
do alike: wake the local waiters of a job, run background work that logs its failures, carry a
cancellation out here, and wait (bounded) until a job's record is final.

Each backend keeps its own storage, notification and `_waiter` (the SQLite one also starts its
poll when someone waits); these four methods were the same code in both.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import structlog

from zenml_serving.execution.backend import BackendUnavailableError

if TYPE_CHECKING:
    import weakref
    from collections.abc import Awaitable, Callable

    from zenml_serving.execution.records import JobRecord

__all__ = ["SharedJobBackend"]

_log = structlog.stdlib.get_logger(__name__)


class SharedJobBackend:
    """Base of the SQLite and Redis backends: the parts they share (see the module docstring).

    Subclasses set `_waiters`, `_tasks`, `_cancel` and `_cancel_wait_s` in their constructor
    and provide `get` and `_waiter`.
    """

    _waiters: weakref.WeakValueDictionary[str, asyncio.Event]
    _tasks: set[asyncio.Task[None]]
    _cancel: Callable[[str], Awaitable[None]] | None
    _cancel_wait_s: float

    async def get(self, job_id: str) -> JobRecord | None:
        raise NotImplementedError

    def _waiter(self, job_id: str) -> asyncio.Event:
        raise NotImplementedError

    def _wake(self, job_id: str) -> None:
        waiter = self._waiters.pop(job_id, None)
        if waiter is not None:
            waiter.set()

    async def _cancel_locally(self, job_id: str) -> None:
        if self._cancel is not None:
            await self._cancel(job_id)

    async def _wait_until_finished(self, job_id: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._cancel_wait_s
        while True:
            waiter = self._waiter(job_id)
            record = await self.get(job_id)
            remaining = deadline - loop.time()
            if record is None or record.finished or remaining <= 0:
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(waiter.wait(), remaining)

    def _spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await work
            except BackendUnavailableError:
                pass  # logged by _unavailable
            except Exception:
                _log.exception("job_backend_task_failed")

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
