"""LoopLagMonitor reports a blocked event loop, during and for a while after the stall."""

from __future__ import annotations

import asyncio
import time

from zenml_serving.loop_monitor import LoopLagMonitor


def test_lag_is_seen_while_overdue_and_after_the_loop_catches_up() -> None:
    async def scenario() -> tuple[float, float, float, float]:
        monitor = LoopLagMonitor(interval_s=0.05, window_s=5.0)
        monitor.start()
        await asyncio.sleep(0.2)
        quiet = monitor.lag_s
        time.sleep(0.4)  # noqa: ASYNC251 - the point: block the loop
        during = monitor.lag_s  # the sampler has not had its turn yet
        await asyncio.sleep(0.1)
        after = monitor.lag_s
        monitor.window_s = 0.05
        await asyncio.sleep(0.2)
        forgotten = monitor.lag_s
        await monitor.stop()
        return quiet, during, after, forgotten

    quiet, during, after, forgotten = asyncio.run(scenario())
    assert quiet < 0.2
    assert during >= 0.3
    assert after >= 0.3
    assert forgotten < 0.2


def test_samples_stay_bounded_when_nobody_asks() -> None:
    async def scenario() -> int:
        monitor = LoopLagMonitor(interval_s=0.01, window_s=0.05)
        monitor.start()
        await asyncio.sleep(0.5)  # ~50 samples taken, lag_s never read
        kept = len(monitor._samples)
        await monitor.stop()
        return kept

    assert asyncio.run(scenario()) <= 10
