"""The request path's parts, in-process: what each costs, so that each reason stays checkable.

    .venv/bin/python bench/request_path.py              # ~30 s
    .venv/bin/python bench/request_path.py --repeats 5

No HTTP client and no server process (wrk figures: `bench/run.py request-path`): one event
loop, the manager's worker threads, a 3-step pipeline of trivial steps, the memory job
backend, pinned to core 0 when `taskset` allows. Each figure is the median of `--repeats`
rounds (min-max given):

1. **sync invoke**: `ServingExecutionManager.invoke` vs `DirectExecutionEngine.run` alone on
   the event loop's thread: what admission, the worker-thread hop, the deadline race and the
   outcome counting add per invocation.
2. **async submit**: `manager.submit()` (the server's side of the 202) and submit -> the
   `job.completed` event stored (the server's side of submit -> completed).
3. **429**: an invocation refused by a full manager (1 slot, no queue), the rejection path.
4. **job gauges**: one metrics sample with 10,000 jobs kept: the kept counts (now) vs listing
   the store (`jobs.query(limit=10**9)`, before).
5. **HTTP layer**: a trivial ASGI app alone vs inside `HttpTelemetry` with metrics on (the
   request counter and duration histogram, the route from Litestar's `path_template`), and
   what the second routing the layer did before cost (Litestar's cached `handle_routing`).

With `PYTHONPATH=<earlier checkout>/src` the parts that exist there (1-3) measure the code
before: run both, alternating, for a paired A/B.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.builders import param, pipeline_of, step_of, upstream

from zenml_serving.engine.engine import DirectExecutionEngine
from zenml_serving.execution.invocation import Invocation, new_invocation_id
from zenml_serving.execution.manager import ServingExecutionManager
from zenml_serving.execution.memory import MemoryEventLog, MemoryJobStore
from zenml_serving.execution.records import JobRecord
from zenml_serving.execution.slots import OverloadedError, Slot
from zenml_serving.telemetry import metrics
from zenml_serving.telemetry.http import HttpTelemetry

FINAL = frozenset({"job.completed", "job.failed", "job.cancelled", "job.timed_out"})


def load(text: str) -> str:
    return text.strip()


def shout(text: str) -> str:
    return text.upper()


def count(text: str) -> int:
    return len(text)


def engine() -> DirectExecutionEngine:
    return DirectExecutionEngine(
        pipeline_of(
            step_of(load, text=param("text")),
            step_of(shout, text=upstream("load")),
            step_of(count, text=upstream("shout")),
            parameters={"text": (str, "hello")},
        )
    )


def manager(**options: Any) -> ServingExecutionManager:
    return ServingExecutionManager(
        engine(),
        jobs=MemoryJobStore(ttl_s=3600, max_jobs=options.pop("max_jobs", 100_000)),
        events=MemoryEventLog(max_events_per_job=100),
        max_concurrency=options.pop("max_concurrency", 4),
        max_queue_size=options.pop("max_queue_size", 4),
        request_timeout_s=30,
        shutdown_grace_s=1,
        on_outcome=lambda inv, outcome: metrics.count_outcome(inv.mode, outcome),
        **options,
    )


def invocation(mode: Any = "sync") -> Invocation:
    return Invocation(id=new_invocation_id(), parameters={"text": " hi "}, mode=mode)


def per_call_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


async def sync_invoke(n: int) -> dict[str, float]:
    m = manager()
    await m.start()
    direct, managed = [], []
    try:
        for _ in range(n):
            started = time.perf_counter()
            m.engine.run({"text": " hi "})
            direct.append(time.perf_counter() - started)
            started = time.perf_counter()
            await m.invoke(invocation())
            managed.append(time.perf_counter() - started)
    finally:
        await m.stop()
    return {"engine_run_us": per_call_us(direct), "manager_invoke_us": per_call_us(managed)}


async def async_submit(n: int) -> dict[str, float]:
    m = manager()
    await m.start()
    accepted, completed = [], []
    try:
        for _ in range(n):
            inv = invocation("async")
            started = time.perf_counter()
            record = await m.submit(inv)
            accepted.append(time.perf_counter() - started)
            subscription = await m.events.subscribe(record.job_id)
            while (event := await subscription.next(5.0)) is not None and event.type not in FINAL:
                pass
            completed.append(time.perf_counter() - started)
    finally:
        await m.stop()
    return {"submit_us": per_call_us(accepted), "submit_to_completed_us": per_call_us(completed)}


async def rejection(n: int) -> dict[str, float]:
    m = manager(max_concurrency=1, max_queue_size=0)
    await m.start()
    blocker = m.slots.reserve()  # the one slot, held
    times = []
    try:
        for _ in range(n):
            started = time.perf_counter()
            with contextlib.suppress(OverloadedError):
                await m.invoke(invocation())
            times.append(time.perf_counter() - started)
    finally:
        if isinstance(blocker, Slot):
            blocker.release()
        await m.stop()
    return {"refused_us": per_call_us(times)}


async def job_gauges(n: int) -> dict[str, float]:
    m = manager()
    await m.start()
    try:
        for i in range(10_000):
            record = JobRecord(job_id=f"job-{i}", created_at=time.time(), owner=m.owner)
            await m.jobs.put(record)
            m._set_job_state(record.job_id, record.status)
        kept, listed = [], []
        for _ in range(n):
            started = time.perf_counter()
            await metrics.sample_state(m)
            kept.append(time.perf_counter() - started)
            started = time.perf_counter()
            records, _ = await m.jobs.query(status=None, limit=10**9, offset=0)
            counts: dict[str, int] = {}
            for r in records:
                if r.owner == m.owner:
                    counts[r.status] = counts.get(r.status, 0) + 1
            listed.append(time.perf_counter() - started)
    finally:
        await m.stop()
    return {"kept_counts_us": per_call_us(kept), "store_listing_us": per_call_us(listed)}


async def http_layer(n: int) -> dict[str, float]:
    async def app(scope: Any, receive: Any, send: Any) -> None:  # noqa: ARG001
        scope["path_template"] = "/invoke"  # as Litestar's router sets it
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    layer = HttpTelemetry(app, metrics_enabled=True, access_log=False, tracer=None)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:  # noqa: ARG001
        return None

    def scope() -> dict[str, Any]:
        return {"type": "http", "method": "POST", "path": "/invoke", "headers": []}

    bare, layered = [], []
    for _ in range(n):
        started = time.perf_counter()
        await app(scope(), receive, send)
        bare.append(time.perf_counter() - started)
        started = time.perf_counter()
        await layer(scope(), receive, send)
        layered.append(time.perf_counter() - started)
    return {"bare_app_us": per_call_us(bare), "with_layer_us": per_call_us(layered)}


async def second_routing(n: int) -> dict[str, float]:
    """What the outer layer's own route lookup cost before (Litestar's cached router)."""
    from litestar import Litestar, post

    @post("/invoke")
    async def invoke(data: dict[str, Any]) -> dict[str, Any]:
        return data

    app = Litestar([invoke])
    times = []
    for _ in range(n):
        started = time.perf_counter()
        app.asgi_router.handle_routing(path="/invoke", method="POST")
        times.append(time.perf_counter() - started)
    return {"second_routing_us": per_call_us(times)}


async def one_round(n: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    for part in (sync_invoke, async_submit, rejection):
        figures.update(await part(n))
    if hasattr(ServingExecutionManager, "job_counts"):  # not in code before issue 19
        figures.update(await http_layer(n))
        figures.update(await second_routing(n))
        figures.update(await job_gauges(max(5, n // 100)))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("-n", type=int, default=2000, help="calls per part and round")
    args = parser.parse_args()
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setaffinity(0, {0})
    import structlog

    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())
    rounds = [asyncio.run(one_round(args.n)) for _ in range(args.repeats)]
    print(f"in-process, {args.repeats} rounds of {args.n} calls; median (min-max), microseconds")
    for name in rounds[0]:
        values = [r[name] for r in rounds]
        print(
            f"  {name:24s} {statistics.median(values):9.1f}  ({min(values):.1f}-{max(values):.1f})"
        )


if __name__ == "__main__":
    main()
