"""ServingExecutionManager in-process: counting, draining, job counts, a step that exits.

No server, no store beyond the in-memory job backend: each test runs in milliseconds. The
e2e tests (tests/e2e/test_execution.py) check the same behaviour through granian.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.builders import param, pipeline_of, step_of
from zenml_serving.engine.engine import DirectExecutionEngine, StepFailedError
from zenml_serving.execution.backends import process_owner
from zenml_serving.execution.invocation import Invocation, InvocationOutcome, new_invocation_id
from zenml_serving.execution.manager import (
    InvocationAbortedError,
    ServingExecutionManager,
    ShuttingDownError,
)
from zenml_serving.execution.memory import MemoryEventLog, MemoryJobStore
from zenml_serving.execution.slots import OverloadedError
from zenml_serving.execution.sqlite_backend import SqliteJobBackend
from zenml_serving.telemetry import metrics

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def echo(text: str) -> str:
    return text


released = threading.Event()


def wait_for_release(text: str) -> str:
    released.wait(timeout=10)
    return text


def exits(text: str) -> str:
    sys.exit(f"bye {text}")


def interrupts(text: str) -> str:
    raise KeyboardInterrupt


class Listener:
    """Remembers how every invocation ended, as tracking and telemetry are told."""

    def __init__(self) -> None:
        self.finished: list[InvocationOutcome] = []

    def invocation_started(self, invocation: Invocation) -> None:
        return None

    def invocation_finished(self, invocation: Invocation, outcome: InvocationOutcome) -> None:
        self.finished.append(outcome)


def engine_of(function: Callable[[str], str]) -> DirectExecutionEngine:
    return DirectExecutionEngine(
        pipeline_of(step_of(function, text=param("text")), parameters={"text": (str, "x")})
    )


def invocation(mode: Any = "sync") -> Invocation:
    return Invocation(id=new_invocation_id(), parameters={"text": "hi"}, mode=mode)


class Harness:
    def __init__(self, function: Callable[[str], str], **options: Any) -> None:
        self.listener = Listener()
        self.outcomes: list[str] = []
        store = options.pop("store", None)
        self.jobs: Any = store or MemoryJobStore(
            ttl_s=options.pop("ttl_s", 3600), max_jobs=options.pop("max_jobs", 100)
        )
        events: Any = store or MemoryEventLog(max_events_per_job=100)

        def count(inv: Invocation, outcome: str) -> None:
            self.outcomes.append(outcome)
            metrics.count_outcome(inv.mode, outcome)

        self.manager = ServingExecutionManager(
            engine_of(function),
            jobs=self.jobs,
            events=events,
            max_concurrency=options.pop("max_concurrency", 2),
            max_queue_size=options.pop("max_queue_size", 2),
            request_timeout_s=30,
            shutdown_grace_s=5,
            listeners=[self.listener],
            on_outcome=count,
            **options,
        )

    async def until_finished(self, job_id: str) -> str:
        for _ in range(2000):
            record = await self.jobs.get(job_id)
            if record is not None and record.finished:
                return record.status
            await asyncio.sleep(0.001)
        raise AssertionError(f"job {job_id} never finished")


@pytest.fixture
async def harness_of() -> AsyncIterator[Callable[..., Any]]:
    made: list[Harness] = []

    async def make(function: Callable[[str], str], **options: Any) -> Harness:
        harness = Harness(function, **options)
        await harness.manager.start()
        made.append(harness)
        return harness

    yield make
    released.set()
    for harness in made:
        await harness.manager.stop()
    released.clear()


def invocations_counted(mode: str, outcome: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "zenml_serving_invocations_total", {"mode": mode, "outcome": outcome}
    )
    return value or 0.0


class TestAStepThatExits:
    """SystemExit / KeyboardInterrupt in a step fail that step, named; the server lives on."""

    @pytest.mark.parametrize("function", [exits, interrupts])
    async def test_sync(self, harness_of: Any, function: Callable[[str], str]) -> None:
        harness = await harness_of(function)
        with pytest.raises(StepFailedError, match=rf"step '{function.__name__}' failed") as raised:
            await harness.manager.invoke(invocation())
        assert isinstance(raised.value.error, (SystemExit, KeyboardInterrupt))
        [outcome] = harness.listener.finished  # the tracking listener's entry is closed
        assert outcome.status == "failed"
        assert harness.outcomes == ["failed"]
        assert harness.manager.stats.failed == 1
        assert harness.manager.slots.in_use == 0
        # ...and the manager still serves
        harness.manager.engine = engine_of(echo)
        assert (await harness.manager.invoke(invocation())).outputs == {"output": "hi"}

    async def test_async_job_fails_naming_the_step(self, harness_of: Any) -> None:
        harness = await harness_of(exits)
        record = await harness.manager.submit(invocation("async"))
        assert await harness.until_finished(record.job_id) == "failed"
        stored = await harness.jobs.get(record.job_id)
        assert stored is not None
        assert stored.error is not None
        assert (stored.error.type, stored.error.step) == ("SystemExit", "exits")
        assert [o.status for o in harness.listener.finished] == ["failed"]


class _EngineThatExits(DirectExecutionEngine):
    """An engine bug that lets SystemExit escape (steps cannot: the engine names them)."""

    def run(self, *args: Any, **kwargs: Any) -> Any:
        raise SystemExit("engine bug")


class TestAnExitEscapingTheEngine:
    """Whatever escapes the engine still fails the invocation; listeners are told."""

    async def test_sync_is_aborted_and_counted(self, harness_of: Any) -> None:
        harness = await harness_of(echo)
        harness.manager.engine = _EngineThatExits(engine_of(echo).pipeline)
        with pytest.raises(InvocationAbortedError, match=r"SystemExit"):
            await harness.manager.invoke(invocation())
        [outcome] = harness.listener.finished
        assert outcome.status == "failed"
        assert harness.manager.slots.in_use == 0


class TestDrainCounting:
    """A drain's refusals are `rejected` in /status totals and in the metrics alike."""

    async def test_queued_and_new_invocations_are_refused_and_counted(
        self, harness_of: Any
    ) -> None:
        harness = await harness_of(wait_for_release, max_concurrency=1, max_queue_size=1)
        manager = harness.manager
        before = invocations_counted("sync", "rejected")
        running = asyncio.ensure_future(manager.invoke(invocation()))
        await asyncio.sleep(0)
        queued = asyncio.ensure_future(manager.invoke(invocation()))
        await asyncio.sleep(0)
        assert manager.slots.in_use == 1
        assert manager.slots.waiting == 1

        manager.begin_drain()
        with pytest.raises(ShuttingDownError):
            await queued
        with pytest.raises(ShuttingDownError):
            await manager.invoke(invocation())
        released.set()
        assert (await running).outputs == {"output": "hi"}

        assert harness.outcomes == ["shutting_down", "shutting_down", "completed"]
        assert manager.stats.rejected == 2
        assert manager.stats.completed == 1
        assert invocations_counted("sync", "rejected") == before + 2

    async def test_overload_counts_as_rejected(self, harness_of: Any) -> None:
        harness = await harness_of(wait_for_release, max_concurrency=1, max_queue_size=0)
        running = asyncio.ensure_future(harness.manager.invoke(invocation()))
        await asyncio.sleep(0)
        with pytest.raises(OverloadedError):
            await harness.manager.invoke(invocation())
        released.set()
        await running
        assert harness.outcomes == ["overloaded", "completed"]
        assert harness.manager.stats.rejected == 1


class TestJobCounts:
    """Job gauges come from counts kept as jobs move on, never from listing the store."""

    async def test_counts_follow_the_jobs(self, harness_of: Any) -> None:
        harness = await harness_of(echo)
        manager = harness.manager
        ids = [(await manager.submit(invocation("async"))).job_id for _ in range(3)]
        for job_id in ids:
            assert await harness.until_finished(job_id) == "completed"
        assert manager.job_counts().get("completed") == 3
        assert manager.job_counts().get("queued", 0) == 0
        assert manager.job_counts().get("running", 0) == 0

    async def test_evicted_jobs_are_no_longer_counted(self, harness_of: Any) -> None:
        harness = await harness_of(echo, ttl_s=0)
        manager = harness.manager
        job_id = (await manager.submit(invocation("async"))).job_id
        await harness.until_finished(job_id)
        assert await manager.evict_now() == 1
        assert manager.job_counts().get("completed", 0) == 0

    async def test_jobs_pushed_out_by_the_count_bound_are_no_longer_counted(
        self, harness_of: Any
    ) -> None:
        harness = await harness_of(echo, max_jobs=1)
        manager = harness.manager
        first = (await manager.submit(invocation("async"))).job_id
        await harness.until_finished(first)
        second = (await manager.submit(invocation("async"))).job_id
        await harness.until_finished(second)
        assert await harness.jobs.get(first) is None
        assert manager.job_counts().get("completed") == 1

    async def test_a_job_another_process_evicted_is_forgotten_at_maintenance(
        self, harness_of: Any, tmp_path: Path
    ) -> None:
        def sqlite_store(owner: str) -> SqliteJobBackend:
            return SqliteJobBackend(
                tmp_path / "jobs.sqlite3",
                owner=owner,
                job_ttl_s=3600,
                max_jobs=1,
                max_job_bytes=1 << 30,
                max_events_per_job=100,
                request_timeout_s=30,
            )

        # Two workers of one host sharing the SQLite job store, room for one job.
        first = await harness_of(echo, store=sqlite_store(process_owner()))
        second = await harness_of(echo, store=sqlite_store("another-worker"))
        second.manager.owner = "another-worker"  # as a second granian worker names itself
        job_id = (await first.manager.submit(invocation("async"))).job_id
        await first.until_finished(job_id)
        assert first.manager.job_counts().get("completed") == 1

        other = (await second.manager.submit(invocation("async"))).job_id  # evicts the first
        await second.until_finished(other)
        assert await first.jobs.get(job_id) is None
        await first.manager.evict_now()  # the maintenance round
        assert first.manager.job_counts().get("completed", 0) == 0
        assert second.manager.job_counts().get("completed") == 1
