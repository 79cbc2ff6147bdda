"""One behavioural contract for every job backend: in memory and Redis (the machine's server).

Whatever the backend, controllers and the execution manager see the same thing: event ids
from 1 per job, replay after a cursor then live delivery, bounded history keeping the newest,
records listed newest first and filtered, finished records evicted by TTL and count.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.services import delete_namespace, fresh_namespace, shared_redis_url
from zenml_serving.execution.backend import EventLog, JobStore
from zenml_serving.execution.memory import MemoryEventLog, MemoryJobStore
from zenml_serving.execution.records import (
    JobError,
    JobEvent,
    JobRecord,
    StepProgress,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Backend:
    jobs: JobStore
    events: EventLog


BackendFactory = Callable[..., Any]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def make_backend(request: pytest.FixtureRequest) -> AsyncIterator[BackendFactory]:
    """`await make_backend(ttl_s=..., max_jobs=..., max_events=...)`: a started backend."""
    kind: str = request.param
    started: list[JobStore] = []
    namespace = fresh_namespace("contract")
    url = shared_redis_url() if kind == "redis" else ""

    async def make(ttl_s: float = 60, max_jobs: int = 100, max_events: int = 100) -> Backend:
        if kind == "memory":
            backend = Backend(
                MemoryJobStore(ttl_s=ttl_s, max_jobs=max_jobs),
                MemoryEventLog(max_events_per_job=max_events),
            )
        else:
            from zenml_serving.execution.redis_backend import RedisJobBackend

            redis_backend = RedisJobBackend(
                url,
                namespace=f"{namespace}:{len(started)}",
                owner="contract:1",
                job_ttl_s=ttl_s,
                max_jobs=max_jobs,
                max_events_per_job=max_events,
                request_timeout_s=300,
            )
            backend = Backend(redis_backend, redis_backend)
        await backend.jobs.start()
        started.append(backend.jobs)
        return backend

    yield make
    for jobs in started:
        await jobs.close()
    if kind == "redis":
        delete_namespace(namespace)


def event(kind: str, job: str = "j", **fields: object) -> JobEvent:
    return JobEvent(type=kind, job_id=job, at=0.0, **fields)  # type: ignore[arg-type]


def record(job_id: str, created_at: float, **fields: Any) -> JobRecord:
    return JobRecord(job_id=job_id, created_at=created_at, **fields)


class TestEventLogContract:
    """Subscribers get the history after their cursor, then live events, then the end."""

    async def test_events_are_numbered_from_one_per_job(self, make_backend: BackendFactory) -> None:
        log = (await make_backend()).events
        ids = [(await log.append(event(k))).id for k in ("job.queued", "job.started")]
        assert ids == [1, 2]
        assert (await log.append(event("job.queued", job="other"))).id == 1

    async def test_a_late_subscriber_replays_then_follows_live(
        self, make_backend: BackendFactory
    ) -> None:
        log = (await make_backend()).events
        await log.append(event("job.queued"))
        await log.append(event("job.started"))
        subscription = await log.subscribe("j", after=1)
        replayed = await subscription.next(5.0)
        assert replayed is not None
        assert (replayed.id, replayed.type) == (2, "job.started")
        waiter = asyncio.ensure_future(subscription.next(10.0))
        await asyncio.sleep(0.05)
        await log.append(event("job.completed", outputs={"x": [1, 2]}))
        final = await waiter
        assert final is not None
        assert (final.id, final.type, final.outputs) == (3, "job.completed", {"x": [1, 2]})
        assert subscription.done

    async def test_every_subscriber_gets_every_live_event(
        self, make_backend: BackendFactory
    ) -> None:
        log = (await make_backend()).events
        await log.append(event("job.queued"))
        first, second = await log.subscribe("j", 1), await log.subscribe("j", 1)
        waiters = [asyncio.ensure_future(s.next(10.0)) for s in (first, second)]
        await asyncio.sleep(0.05)
        await log.append(event("step.started", step="a"))
        received = await asyncio.gather(*waiters)
        assert [(e.id, e.step) for e in received if e is not None] == [(2, "a"), (2, "a")]

    async def test_a_quiet_job_times_out_with_none(self, make_backend: BackendFactory) -> None:
        log = (await make_backend()).events
        await log.append(event("job.queued"))
        subscription = await log.subscribe("j", after=1)
        assert await subscription.next(0.05) is None
        assert not subscription.done

    async def test_an_unknown_job_cannot_be_subscribed(self, make_backend: BackendFactory) -> None:
        with pytest.raises(KeyError):
            await (await make_backend()).events.subscribe("nope")

    async def test_history_is_bounded_and_keeps_the_newest(
        self, make_backend: BackendFactory
    ) -> None:
        log = (await make_backend(max_events=10)).events
        for _ in range(25):
            await log.append(event("step.started", step="s"))
        subscription = await log.subscribe("j", after=0)
        ids = []
        while (next_event := await subscription.next(0.1)) is not None:
            ids.append(next_event.id)
        assert ids == list(range(16, 26))

    async def test_forgotten_history_is_gone(self, make_backend: BackendFactory) -> None:
        log = (await make_backend()).events
        await log.append(event("job.queued"))
        await log.forget("j")
        with pytest.raises(KeyError):
            await log.subscribe("j")


class TestJobStoreContract:
    """Records round-trip, are listed newest first and evicted by age and count."""

    async def test_a_record_round_trips(self, make_backend: BackendFactory) -> None:
        store = (await make_backend()).jobs
        assert await store.get("missing") is None
        original = record(
            "j",
            1.5,
            status="failed",
            started_at=2.25,
            finished_at=3.125,
            steps=[StepProgress(name="a", status="failed", duration_ms=1.5, attempts=2)],
            error=JobError(type="ValueError", message="bad", step="a"),
            trace_id="abc",
            owner="somewhere:1",
        )
        await store.put(original)
        assert await store.get("j") == original

    async def test_listing_is_newest_first_filterable_and_paginated(
        self, make_backend: BackendFactory
    ) -> None:
        store = (await make_backend()).jobs
        for index in range(3):
            await store.put(record(f"j{index}", index))
        await store.put(record("done", 9, status="completed", finished_at=9))
        page, total = await store.query(status=None, limit=2, offset=0)
        assert [r.job_id for r in page] == ["done", "j2"]
        assert total == 4
        page, _ = await store.query(status=None, limit=2, offset=2)
        assert [r.job_id for r in page] == ["j1", "j0"]
        completed, count = await store.query(status="completed", limit=10, offset=0)
        assert ([r.job_id for r in completed], count) == (["done"], 1)

    async def test_a_status_change_moves_the_record_between_filters(
        self, make_backend: BackendFactory
    ) -> None:
        store = (await make_backend()).jobs
        await store.put(record("j", 1))
        await store.put(record("j", 1, status="running", started_at=2))
        assert (await store.query(status="queued", limit=10, offset=0))[1] == 0
        running, count = await store.query(status="running", limit=10, offset=0)
        assert ([r.job_id for r in running], count) == (["j"], 1)
        assert (await store.query(status=None, limit=10, offset=0))[1] == 1

    async def test_finished_records_expire_running_ones_stay(
        self, make_backend: BackendFactory
    ) -> None:
        store = (await make_backend(ttl_s=10)).jobs
        await store.put(record("old", 0, status="failed", finished_at=0))
        await store.put(record("recent", 0, status="completed", finished_at=95))
        await store.put(record("running", 0, status="running"))
        assert await store.evict(now=100) == ["old"]
        assert await store.get("old") is None
        assert await store.get("recent") is not None
        assert await store.get("running") is not None
        assert (await store.query(status=None, limit=10, offset=0))[1] == 2

    async def test_the_count_bound_drops_the_oldest_finished_never_running(
        self, make_backend: BackendFactory
    ) -> None:
        store = (await make_backend(ttl_s=1e9, max_jobs=2)).jobs
        await store.put(record("running", 0, status="running"))
        for index in range(1, 5):
            await store.put(record(f"j{index}", index, status="completed", finished_at=index))
        assert sorted(await store.evict(now=10)) == ["j1", "j2", "j3"]
        page, total = await store.query(status=None, limit=10, offset=0)
        assert [r.job_id for r in page] == ["j4", "running"]
        assert total == 2

    async def test_a_cancellation_request_reaches_the_local_handler(
        self, make_backend: BackendFactory
    ) -> None:
        store = (await make_backend()).jobs
        requested: list[str] = []

        async def handler(job_id: str) -> None:
            requested.append(job_id)

        store.on_cancel_request(handler)
        await store.put(record("j", 1, owner="contract:1"))
        await store.request_cancel("j")
        assert requested == ["j"]

    async def test_describe_names_the_backend(self, make_backend: BackendFactory) -> None:
        description = (await make_backend()).jobs.describe()
        assert description["kind"] in ("memory", "redis")
        assert description["shared"] is (description["kind"] == "redis")
