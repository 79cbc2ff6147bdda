"""One behavioural contract for every job backend: in memory, SQLite (a file in the test's
folder) and Redis (the machine's server).

Whatever the backend, controllers and the execution manager see the same thing: event ids
from 1 per job, replay after a cursor then live delivery, bounded history keeping the newest,
records listed newest first (without outputs) and filtered, finished records evicted by TTL,
count and bytes, a new job refused when only unfinished ones are kept. The shared backends
(SQLite, Redis) also keep the contract between processes: several backend objects with
different owner names on one store stand for several workers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.services import delete_namespace, fresh_namespace, shared_redis_url
from zenml_serving.execution.backend import EventLog, JobStore, JobStoreFullError
from zenml_serving.execution.memory import MemoryEventLog, MemoryJobStore
from zenml_serving.execution.records import (
    JobError,
    JobEvent,
    JobRecord,
    StepProgress,
    apply_event,
)
from zenml_serving.execution.sqlite_backend import SqliteJobBackend

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Backend:
    jobs: JobStore
    events: EventLog


BackendFactory = Callable[..., Any]


async def _make_backends(kind: str, tmp_path: Path) -> AsyncIterator[BackendFactory]:
    started: list[JobStore] = []
    namespace = fresh_namespace("contract")
    url = shared_redis_url() if kind == "redis" else ""

    async def make(
        ttl_s: float = 60,
        max_jobs: int = 100,
        max_events: int = 100,
        max_bytes: int = 1 << 30,
        owner: str = "contract:1",
        store: str | None = None,
    ) -> Backend:
        """`store` names the store to share with an earlier backend (another process)."""
        store = store or f"own{len(started)}"
        if kind == "memory":
            backend = Backend(
                MemoryJobStore(ttl_s=ttl_s, max_jobs=max_jobs, max_job_bytes=max_bytes),
                MemoryEventLog(max_events_per_job=max_events),
            )
        elif kind == "sqlite":
            sqlite_backend = SqliteJobBackend(
                tmp_path / store / "jobs.sqlite3",
                owner=owner,
                job_ttl_s=ttl_s,
                max_jobs=max_jobs,
                max_job_bytes=max_bytes,
                max_events_per_job=max_events,
                request_timeout_s=300,
            )
            backend = Backend(sqlite_backend, sqlite_backend)
        else:
            from zenml_serving.execution.redis_backend import RedisJobBackend

            redis_backend = RedisJobBackend(
                url,
                namespace=f"{namespace}:{store}",
                owner=owner,
                job_ttl_s=ttl_s,
                max_jobs=max_jobs,
                max_job_bytes=max_bytes,
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


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def make_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[BackendFactory]:
    """`await make_backend(ttl_s=..., max_jobs=..., max_events=..., max_bytes=...)`: a
    started backend."""
    async for make in _make_backends(request.param, tmp_path):
        yield make


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def make_shared(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[BackendFactory]:
    """Like `make_backend`, for the backends shared between processes only."""
    async for make in _make_backends(request.param, tmp_path):
        yield make


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

    async def test_a_chunk_event_keeps_its_step_number_and_value(
        self, make_backend: BackendFactory
    ) -> None:
        log = (await make_backend()).events
        chunk = {"text": "partial ☃", "scores": [0.5, 1], "done": False}
        await log.append(event("step.chunk", step="answer", seq=7, chunk=chunk))
        replayed = await (await log.subscribe("j")).next(5.0)
        assert replayed is not None
        assert (replayed.type, replayed.step, replayed.seq, replayed.chunk) == (
            "step.chunk",
            "answer",
            7,
            chunk,
        )

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

    async def test_the_count_bound_holds_on_insert_dropping_the_oldest_finished(
        self, make_backend: BackendFactory
    ) -> None:
        store = (await make_backend(ttl_s=1e9, max_jobs=2)).jobs
        await store.put(record("running", 0, status="running"))
        evicted = []
        for index in range(1, 5):
            evicted += await store.put(
                record(f"j{index}", index, status="completed", finished_at=index)
            )
            assert (await store.query(status=None, limit=10, offset=0))[1] <= 2
        assert evicted == ["j1", "j2", "j3"]
        assert await store.evict(now=10) == []
        page, total = await store.query(status=None, limit=10, offset=0)
        assert [r.job_id for r in page] == ["j4", "running"]
        assert total == 2

    async def test_a_new_job_is_refused_when_every_kept_job_is_unfinished(
        self, make_backend: BackendFactory
    ) -> None:
        store = (await make_backend(ttl_s=1e9, max_jobs=2)).jobs
        await store.put(record("a", 1, status="running"))
        await store.put(record("b", 2))
        with pytest.raises(JobStoreFullError, match="ZENML_SERVING_MAX_JOBS"):
            await store.put(record("c", 3))
        assert await store.get("c") is None
        await store.put(record("b", 2, status="running"))  # an update is never refused
        await store.put(record("a", 1, status="completed", finished_at=4))
        assert await store.put(record("c", 3)) == ["a"]

    async def test_the_byte_bound_drops_the_oldest_finished_then_refuses(
        self, make_backend: BackendFactory
    ) -> None:
        """Backends count bytes as they keep them (SQLite and Redis keep the outputs twice:
        in the record and in the final event), so the test asks for behaviour, not sums."""
        big = {"text": "x" * 30_000}
        store = (await make_backend(ttl_s=1e9, max_bytes=200_000)).jobs
        evicted: list[str] = []
        for index in range(12):
            job_id = f"done{index}"
            await store.put(record(job_id, index, status="running"))
            evicted += await store.put(
                record(job_id, index, status="completed", finished_at=index, outputs=big)
            )
            kept = await store.get(job_id)
            assert kept is not None
            assert kept.outputs == big, "the job that just finished keeps its outputs"
        assert evicted, "finished jobs were dropped to stay within the bytes"
        assert evicted == [f"done{i}" for i in range(len(evicted))], "oldest first"
        for job_id in evicted:
            assert await store.get(job_id) is None
        unfinished: list[str] = []
        refused: JobStoreFullError | None = None
        for index in range(12):
            try:
                await store.put(record(f"run{index}", 100 + index, status="running", outputs=big))
            except JobStoreFullError as exc:
                refused = exc
                break
            unfinished.append(f"run{index}")
        assert refused is not None
        assert "ZENML_SERVING_MAX_JOB_BYTES" in str(refused)
        assert unfinished, "room was made for some"
        for job_id in unfinished:
            assert await store.get(job_id) is not None, "an unfinished job is never dropped"

    async def test_listing_leaves_the_outputs_out_get_has_them(
        self, make_backend: BackendFactory
    ) -> None:
        store = (await make_backend()).jobs
        await store.put(record("j", 1, status="completed", finished_at=2, outputs={"o": [1]}))
        page, _ = await store.query(status=None, limit=10, offset=0)
        assert [(r.job_id, r.status, r.outputs) for r in page] == [("j", "completed", None)]
        kept = await store.get("j")
        assert kept is not None
        assert kept.outputs == {"o": [1]}

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
        assert description["kind"] in ("memory", "sqlite", "redis")
        assert description["shared"] is (description["kind"] != "memory")


class _Owner:
    """What the execution manager does when asked to cancel a job: end it, record it."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.cancelled: list[str] = []
        backend.jobs.on_cancel_request(self.cancel)

    async def cancel(self, job_id: str) -> None:
        self.cancelled.append(job_id)
        final = await self.backend.events.append(
            JobEvent(type="job.cancelled", job_id=job_id, at=time.time())
        )
        current = await self.backend.jobs.get(job_id)
        assert current is not None
        await self.backend.jobs.put(apply_event(current, final))


def queued(job_id: str, owner: str) -> JobRecord:
    return JobRecord(job_id=job_id, created_at=time.time(), owner=owner)


class TestBetweenProcesses:
    """Shared backends: any process answers for any job, as if it ran it."""

    async def test_a_job_of_one_process_is_read_and_streamed_live_by_another(
        self, make_shared: BackendFactory
    ) -> None:
        a = await make_shared(owner="a:1", store="one")
        b = await make_shared(owner="b:1", store="one")
        await a.jobs.put(queued("j", "a:1"))
        await a.events.append(event("job.queued"))
        await a.events.append(event("job.started"))
        seen = await b.jobs.get("j")
        assert seen is not None
        assert seen.status == "queued"
        resumed = await b.events.subscribe("j", after=1)  # Last-Event-ID: 1
        replayed = await resumed.next(5.0)
        assert replayed is not None
        assert (replayed.id, replayed.type) == (2, "job.started")
        waiter = asyncio.ensure_future(resumed.next(10.0))
        await asyncio.sleep(0.05)
        await a.events.append(event("job.completed", outputs={"x": 1}))
        final = await waiter
        assert final is not None
        assert (final.id, final.type, final.outputs) == (3, "job.completed", {"x": 1})

    async def test_a_cancellation_asked_anywhere_is_carried_out_by_the_owner(
        self, make_shared: BackendFactory
    ) -> None:
        a = await make_shared(owner="a:1", store="one")
        b = await make_shared(owner="b:1", store="one")
        owner = _Owner(a)
        await a.jobs.put(queued("j", "a:1"))
        await a.events.append(event("job.queued"))

        await b.jobs.request_cancel("j")

        assert owner.cancelled == ["j"]
        cancelled = await b.jobs.get("j")
        assert cancelled is not None
        assert cancelled.status == "cancelled", "request_cancel waits for the owner's outcome"

    async def test_a_job_whose_process_died_ends_failed_when_read_or_streamed(
        self, make_shared: BackendFactory
    ) -> None:
        b = await make_shared(owner="b:1", store="one")
        ghost = await make_shared(owner="ghost:1", store="one")
        await ghost.jobs.put(queued("j", "ghost:1"))
        await ghost.events.append(event("job.queued"))
        alive = await b.jobs.get("j")
        assert alive is not None
        assert alive.status == "queued", "its process is alive: nothing changes"
        subscription = await b.events.subscribe("j", after=1)
        await ghost.jobs.close()  # the process dies

        assert await subscription.next(0.2) is None  # a heartbeat: it looks at the owner
        final = await subscription.next(5.0)
        assert final is not None
        assert (final.id, final.type) == (2, "job.failed")
        assert subscription.done
        settled = await b.jobs.get("j")
        assert settled is not None
        assert settled.status == "failed"
        assert settled.error is not None
        assert settled.error.type == "OwnerGone"
        assert "ghost:1" in settled.error.message

    async def test_cancelling_a_job_whose_process_is_gone_records_its_end(
        self, make_shared: BackendFactory
    ) -> None:
        b = await make_shared(owner="b:1", store="one")
        await b.jobs.put(queued("j", "ghost:1"))
        await b.jobs.request_cancel("j")
        settled = await b.jobs.get("j")
        assert settled is not None
        assert settled.finished
        assert settled.error is not None
        assert settled.error.type == "OwnerGone"

    async def test_a_late_write_never_undoes_a_final_record(
        self, make_shared: BackendFactory
    ) -> None:
        a = await make_shared(owner="a:1", store="one")
        b = await make_shared(owner="b:1", store="one")
        running = JobRecord(job_id="j", created_at=time.time(), status="running", owner="a:1")
        await a.jobs.put(running)
        cancelled = apply_event(running, JobEvent(type="job.cancelled", job_id="j", at=1.0))
        await b.jobs.put(cancelled)
        await a.jobs.put(running)  # the owner did not hear of it
        assert await b.jobs.get("j") == cancelled
