"""The in-memory job store and event log: replay, live delivery, bounds and eviction."""

from __future__ import annotations

import asyncio

import pytest

from zenml_serving.execution.memory import MemoryEventLog, MemoryJobStore
from zenml_serving.execution.records import JobEvent, JobRecord, StepProgress, apply_event

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def event(kind: str, job: str = "j", **fields: object) -> JobEvent:
    return JobEvent(type=kind, job_id=job, at=0.0, **fields)  # type: ignore[arg-type]


class TestEventLog:
    """Subscribers get the history after their cursor, then live events, then the end."""

    async def test_events_are_numbered_from_one(self) -> None:
        log = MemoryEventLog(max_events_per_job=100)
        ids = [(await log.append(event(k))).id for k in ("job.queued", "job.started")]
        assert ids == [1, 2]

    async def test_a_late_subscriber_replays_then_follows_live(self) -> None:
        log = MemoryEventLog(max_events_per_job=100)
        await log.append(event("job.queued"))
        await log.append(event("job.started"))
        subscription = await log.subscribe("j", after=1)
        assert (await subscription.next(1.0)).type == "job.started"  # type: ignore[union-attr]
        waiter = asyncio.ensure_future(subscription.next(5.0))
        await asyncio.sleep(0)
        await log.append(event("job.completed"))
        final = await waiter
        assert final is not None
        assert (final.id, final.type) == (3, "job.completed")
        assert subscription.done

    async def test_a_quiet_job_times_out_with_none(self) -> None:
        log = MemoryEventLog(max_events_per_job=100)
        await log.append(event("job.queued"))
        subscription = await log.subscribe("j", after=1)
        assert await subscription.next(0.01) is None
        assert not subscription.done

    async def test_an_unknown_job_cannot_be_subscribed(self) -> None:
        with pytest.raises(KeyError):
            await MemoryEventLog(max_events_per_job=10).subscribe("nope")

    async def test_history_is_bounded_and_keeps_the_newest(self) -> None:
        log = MemoryEventLog(max_events_per_job=10)
        for _ in range(25):
            await log.append(event("step.started", step="s"))
        subscription = await log.subscribe("j", after=0)
        first = await subscription.next(0.1)
        assert first is not None
        assert first.id == 16


class TestJobStore:
    """Records are listed newest first and evicted by age and count."""

    async def test_listing_is_newest_first_and_filterable(self) -> None:
        store = MemoryJobStore(ttl_s=60, max_jobs=100)
        for index in range(3):
            await store.put(JobRecord(job_id=f"j{index}", created_at=index))
        await store.put(JobRecord(job_id="done", created_at=9, status="completed", finished_at=9))
        page, total = await store.query(status=None, limit=2, offset=0)
        assert [r.job_id for r in page] == ["done", "j2"]
        assert total == 4
        completed, _ = await store.query(status="completed", limit=10, offset=0)
        assert [r.job_id for r in completed] == ["done"]

    async def test_finished_records_expire_running_ones_stay(self) -> None:
        store = MemoryJobStore(ttl_s=10, max_jobs=100)
        await store.put(JobRecord(job_id="old", created_at=0, status="failed", finished_at=0))
        await store.put(JobRecord(job_id="running", created_at=0, status="running"))
        assert await store.evict(now=100) == ["old"]
        assert await store.get("old") is None
        assert await store.get("running") is not None

    async def test_the_count_bound_drops_the_oldest_finished_on_insert(self) -> None:
        store = MemoryJobStore(ttl_s=1e9, max_jobs=2)
        evicted = []
        for index in range(4):
            evicted += await store.put(
                JobRecord(
                    job_id=f"j{index}", created_at=index, status="completed", finished_at=index
                )
            )
        assert evicted == ["j0", "j1"]
        page, _ = await store.query(status=None, limit=10, offset=0)
        assert [r.job_id for r in page] == ["j3", "j2"]


class TestApplyEvent:
    """Events move a record through its states; a final record never changes."""

    def test_progress_then_final(self) -> None:
        record = JobRecord(job_id="j", created_at=0, steps=[StepProgress(name="a")])
        record = apply_event(record, event("job.started"))
        record = apply_event(record, event("step.completed", step="a", duration_ms=2.0))
        record = apply_event(record, event("job.completed", outputs={"x": 1}))
        assert record.status == "completed"
        assert record.steps[0].status == "completed"
        assert record.outputs == {"x": 1}
        assert apply_event(record, event("job.failed")) is record
