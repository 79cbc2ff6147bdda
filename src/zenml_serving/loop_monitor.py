"""LoopLagMonitor: how late the event loop runs what it was asked to run.

A task sleeps `interval_s` in a loop and records how much later than asked it woke up. A step
that holds the GIL, a blocking call on the loop or a CPU-starved process shows up here as lag
long before requests time out; `/health` and `/livez` turn lag past
ZENML_SERVING_HEALTH_MAX_LOOP_LAG into 503, so a load balancer or kubelet stops sending
traffic to (or restarts) a wedged process instead of waiting on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque

__all__ = ["LoopLagMonitor"]


class LoopLagMonitor:
    """The worst event-loop lag seen over the last `window_s` seconds, including right now."""

    def __init__(self, *, interval_s: float = 0.25, window_s: float = 5.0) -> None:
        self.interval_s = interval_s
        self.window_s = window_s
        self._samples: deque[tuple[float, float]] = deque()
        self._sleeping_since: float | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sampling on the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop sampling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def lag_s(self) -> float:
        """Worst lag of the window, or the current overshoot if the sampler is overdue now
        (the loop was blocked and this call runs before the sampler got its turn)."""
        now = time.monotonic()
        self._forget_before(now - self.window_s)
        worst = max((lag for _, lag in self._samples), default=0.0)
        if self._sleeping_since is not None:
            worst = max(worst, now - self._sleeping_since - self.interval_s)
        return max(worst, 0.0)

    async def _run(self) -> None:
        while True:
            self._sleeping_since = started = time.monotonic()
            await asyncio.sleep(self.interval_s)
            woke = time.monotonic()
            self._samples.append((woke, max(woke - started - self.interval_s, 0.0)))
            self._forget_before(woke - self.window_s)  # bounded even if nobody asks

    def _forget_before(self, oldest: float) -> None:
        while self._samples and self._samples[0][0] < oldest:
            self._samples.popleft()
