"""What only the Redis backend has to get right: namespaces, key expiry, cancellation routed
between processes, and surviving a Redis that stops and comes back.

Several backend objects with different owner names stand for several serving processes. The
outage tests start a redis-server of their own on a free port (never the shared one).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.builders import param, pipeline_of, step_of
from tests.services import (
    SHARED_REDIS_URL,
    RedisServer,
    delete_namespace,
    free_port,
    fresh_namespace,
    log_events,
    shared_redis_url,
)
from zenml_serving.app import create_app
from zenml_serving.config import ServingConfig
from zenml_serving.execution.backend import BackendUnavailableError
from zenml_serving.execution.records import JobEvent, JobRecord, apply_event
from zenml_serving.execution.redis_backend import RedisJobBackend

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


Make = Callable[..., Awaitable[RedisJobBackend]]


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    """`await make(owner=..., namespace=..., url=...)`: started backends, closed afterwards."""
    started: list[RedisJobBackend] = []
    default_namespace = fresh_namespace("redis")

    async def build(
        owner: str = "a:1",
        namespace: str | None = None,
        url: str | None = None,
        **options: Any,
    ) -> RedisJobBackend:
        settings: dict[str, Any] = {
            "job_ttl_s": 60,
            "max_jobs": 100,
            "max_events_per_job": 100,
            "request_timeout_s": 300,
            "timeout_s": 1.0,
            **options,
        }
        backend = RedisJobBackend(
            url or shared_redis_url(),
            namespace=namespace or default_namespace,
            owner=owner,
            **settings,
        )
        await backend.start()
        started.append(backend)
        return backend

    yield build
    for backend in started:
        await backend.close()
    delete_namespace(default_namespace)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own (no persistence: a restart loses everything)."""
    server = RedisServer(log_path=tmp_path / "redis.log").start()
    yield server
    server.stop()


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 20
) -> None:
    """Wait until `check()` (a guard against hanging, not a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if await check():
                return
        except BackendUnavailableError:
            pass
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def queued(job_id: str, owner: str) -> JobRecord:
    return JobRecord(job_id=job_id, created_at=time.time(), owner=owner)


class FakeOwner:
    """What the execution manager does when asked to cancel: end the job, record it."""

    def __init__(self, backend: RedisJobBackend) -> None:
        self.backend = backend
        self.cancelled: list[str] = []
        backend.on_cancel_request(self.cancel)

    async def cancel(self, job_id: str) -> None:
        self.cancelled.append(job_id)
        final = await self.backend.append(
            JobEvent(type="job.cancelled", job_id=job_id, at=time.time())
        )
        current = await self.backend.get(job_id)
        assert current is not None
        await self.backend.put(apply_event(current, final))


class TestNamespaces:
    """Deployments sharing a Redis see nothing of each other; keys carry the namespace."""

    async def test_two_namespaces_do_not_see_each_others_jobs(self, make: Make) -> None:
        namespace = fresh_namespace("other")
        try:
            mine, theirs = await make(), await make(namespace=namespace)
            await mine.put(queued("j", "a:1"))
            await mine.append(JobEvent(type="job.queued", job_id="j", at=0))
            assert await theirs.get("j") is None
            assert await theirs.query(status=None, limit=10, offset=0) == ([], 0)
            with pytest.raises(KeyError):
                await theirs.subscribe("j")
        finally:
            delete_namespace(namespace)

    async def test_every_key_starts_with_the_namespace(self, make: Make) -> None:
        backend = await make()
        await backend.put(queued("j", "a:1"))
        await backend.append(JobEvent(type="job.queued", job_id="j", at=0))
        client = redis.Redis.from_url(SHARED_REDIS_URL)
        try:
            keys = {k.decode() for k in client.scan_iter(match=f"{backend.namespace}:*")}
        finally:
            client.close()
        prefix = backend.namespace
        assert f"{prefix}:job:j" in keys
        assert f"{prefix}:events:j" in keys
        assert f"{prefix}:jobs" in keys
        assert f"{prefix}:status:queued" in keys


class TestExpiry:
    """Redis expires what no process is left to evict; eviction takes the history too."""

    def _ttl(self, key: str) -> int:
        client = redis.Redis.from_url(SHARED_REDIS_URL)
        try:
            return int(client.ttl(key))
        finally:
            client.close()

    async def test_unfinished_jobs_outlive_their_timeout_finished_ones_their_ttl(
        self, make: Make
    ) -> None:
        backend = await make(job_ttl_s=100, request_timeout_s=50)
        await backend.put(queued("j", "a:1"))
        await backend.append(JobEvent(type="job.queued", job_id="j", at=0))
        assert 140 <= self._ttl(f"{backend.namespace}:job:j") <= 150
        assert 140 <= self._ttl(f"{backend.namespace}:events:j") <= 150
        finished = JobEvent(type="job.completed", job_id="j", at=time.time())
        stored = await backend.append(finished)
        record = await backend.get("j")
        assert record is not None
        await backend.put(apply_event(record, stored))
        # The TTL eviction pass comes first; Redis expiry is the backstop a minute later.
        assert 150 <= self._ttl(f"{backend.namespace}:job:j") <= 160
        assert 150 <= self._ttl(f"{backend.namespace}:events:j") <= 160

    async def test_eviction_deletes_the_record_its_history_and_its_index_entries(
        self, make: Make
    ) -> None:
        backend = await make(job_ttl_s=10)
        now = time.time()
        await backend.put(queued("j", "a:1"))
        await backend.append(JobEvent(type="job.queued", job_id="j", at=now))
        record = await backend.get("j")
        assert record is not None
        await backend.put(
            apply_event(record, JobEvent(type="job.failed", job_id="j", at=now - 100))
        )
        assert await backend.evict(now) == ["j"]
        with pytest.raises(KeyError):
            await backend.subscribe("j")
        assert await backend.query(status="failed", limit=10, offset=0) == ([], 0)
        client = redis.Redis.from_url(SHARED_REDIS_URL)
        try:
            assert list(client.scan_iter(match=f"{backend.namespace}:*")) == []
        finally:
            client.close()


class TestCancellationRouting:
    """A cancellation asked anywhere reaches the process that runs the job."""

    async def test_a_request_on_one_process_cancels_on_the_owner(self, make: Make) -> None:
        owner_backend, other = await make(owner="a:1"), await make(owner="b:1")
        owner = FakeOwner(owner_backend)
        await owner_backend.put(queued("j", "a:1"))
        await owner_backend.append(JobEvent(type="job.queued", job_id="j", at=0))

        await other.request_cancel("j")

        assert owner.cancelled == ["j"]
        record = await other.get("j")
        assert record is not None
        assert record.status == "cancelled", "request_cancel waits for the owner's outcome"

    async def test_a_job_whose_process_is_gone_ends_failed_when_read(self, make: Make) -> None:
        """No listener on the owner's cancel channel: the process died mid-job. Whoever reads
        the job next records its end, so pollers and streams get a final state."""
        backend = await make(owner="b:1")
        ghost = await make(owner="ghost:1")
        await ghost.put(queued("j", "ghost:1"))
        await ghost.append(JobEvent(type="job.queued", job_id="j", at=0))
        alive = await backend.get("j")
        assert alive is not None
        assert alive.status == "queued", "its process still listens: nothing changes"
        subscription = await backend.subscribe("j", after=1)
        await ghost.close()  # the process dies

        assert await subscription.next(0.2) is None  # a heartbeat; it looks at the owner
        final = await subscription.next(5.0)
        assert final is not None
        assert (final.id, final.type) == (2, "job.failed")
        assert subscription.done
        record = await backend.get("j")
        assert record is not None
        assert record.status == "failed"
        assert record.error is not None
        assert record.error.type == "OwnerGone"
        assert "ghost:1" in record.error.message

    async def test_cancelling_a_job_whose_process_is_gone_records_its_end(self, make: Make) -> None:
        backend = await make(owner="b:1")
        await backend.put(queued("j", "ghost:1"))
        await backend.request_cancel("j")
        record = await backend.get("j")
        assert record is not None
        assert record.finished
        assert record.error is not None
        assert record.error.type == "OwnerGone"

    async def test_a_job_named_after_this_process_but_not_running_here_is_cancelled(
        self, make: Make
    ) -> None:
        """A restarted container keeps its host name and may get the same pid."""
        previous, current = await make(owner="pod:1"), await make(owner="pod:1")
        await previous.put(queued("j", "pod:1"))
        await previous.close()
        await current.request_cancel("j")
        record = await current.get("j")
        assert record is not None
        assert record.status == "cancelled"

    async def test_a_late_write_never_undoes_a_final_record_and_stops_the_local_job(
        self, make: Make
    ) -> None:
        owner_backend, other = await make(owner="a:1"), await make(owner="b:1")
        stopped: list[str] = []

        async def stop(job_id: str) -> None:
            stopped.append(job_id)

        owner_backend.on_cancel_request(stop)
        running = JobRecord(job_id="j", created_at=time.time(), status="running", owner="a:1")
        await owner_backend.put(running)
        cancelled = apply_event(running, JobEvent(type="job.cancelled", job_id="j", at=1.0))
        await other.put(cancelled)

        await owner_backend.put(running)  # the owner did not hear of it

        assert await other.get("j") == cancelled
        await eventually(lambda: _true(stopped == ["j"]), "the owner to stop the job")


async def _true(value: bool) -> bool:
    return value


class TestAppendIsIdempotent:
    """A retried append (its first reply lost) is not stored twice."""

    async def test_the_same_event_id_is_stored_once(self, make: Make) -> None:
        backend = await make()
        first = await backend.append(JobEvent(type="job.queued", job_id="j", at=0))
        backend._seq.pop("j")  # as if the reply to the first XADD never arrived
        retried = await backend.append(JobEvent(type="job.queued", job_id="j", at=0))
        assert first.id == retried.id == 1
        subscription = await backend.subscribe("j")
        assert (await subscription.next(1.0)) is not None
        assert await subscription.next(0.05) is None


class TestOutage:
    """Redis stops: calls fail fast with BackendUnavailableError, the outage is logged once;
    Redis comes back: everything works again without a restart of the service."""

    async def test_stop_and_restart(self, make: Make, own_redis: RedisServer) -> None:
        backend = await make(url=own_redis.url)
        await backend.put(queued("before", "b:1"))
        assert backend.describe()["connected"] is True

        own_redis.stop()
        with log_events() as logs:
            for _ in range(3):
                with pytest.raises(BackendUnavailableError, match="unreachable"):
                    await backend.get("before")
        assert [e["event"] for e in logs].count("job_backend_unavailable") <= 1
        await eventually(_async(lambda: backend.describe()["connected"] is False), "down")

        own_redis.start()
        with log_events() as logs:
            await eventually(
                lambda: _ok(backend.put(queued("after", "b:1"))), "Redis to be usable again"
            )
            await eventually(_async(lambda: backend.describe()["connected"] is True), "pub/sub")
        assert "job_backend_recovered" in [e["event"] for e in logs]
        assert await backend.get("after") is not None
        assert await backend.get("before") is None, "this Redis keeps nothing across restarts"

    async def test_a_subscriber_waiting_through_the_outage_gets_later_events(
        self, make: Make, own_redis: RedisServer
    ) -> None:
        writer, reader = await make(url=own_redis.url), await make(owner="b:1", url=own_redis.url)
        await writer.append(JobEvent(type="job.queued", job_id="j", at=0))
        subscription = await reader.subscribe("j", after=1)
        waiting = asyncio.ensure_future(subscription.next(30.0))
        own_redis.stop()
        await asyncio.sleep(0.3)
        assert not waiting.done(), "an outage does not end a subscription"
        own_redis.start()
        await eventually(
            lambda: _ok(writer.append(JobEvent(type="job.completed", job_id="j", at=0))),
            "the append after the restart",
        )
        received = await asyncio.wait_for(waiting, 30.0)
        assert received is not None
        assert (received.id, received.type) == (2, "job.completed")

    async def test_the_owner_writes_back_a_running_job_that_redis_lost(
        self, make: Make, own_redis: RedisServer
    ) -> None:
        owner, other = await make(url=own_redis.url), await make(owner="b:1", url=own_redis.url)
        running = JobRecord(job_id="j", created_at=time.time(), status="running", owner="a:1")
        await owner.put(running)
        own_redis.stop()
        own_redis.start()
        await eventually(lambda: _is(other.get("j"), running), "the owner to restore the record")

    async def test_startup_with_redis_unreachable_is_degraded_then_recovers(
        self, make: Make, tmp_path: Path
    ) -> None:
        server = RedisServer(port=free_port(), log_path=tmp_path / "late.log")
        with log_events() as logs:
            backend = await make(url=server.url)
        assert "job_backend_degraded" in [e["event"] for e in logs]
        assert backend.describe()["connected"] is False
        with pytest.raises(BackendUnavailableError):
            await backend.put(queued("j", "a:1"))
        server.start()
        try:
            await eventually(lambda: _ok(backend.put(queued("j", "a:1"))), "Redis to appear")
            await eventually(_async(lambda: backend.describe()["connected"] is True), "pub/sub")
        finally:
            server.stop()


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def run() -> bool:
        return check()

    return run


async def _ok(call: Awaitable[object]) -> bool:
    await call
    return True


async def _is(call: Awaitable[object], expected: object) -> bool:
    return await call == expected


class TestApiWithRedisDown:
    """In-process app on a Redis of its own: sync works through an outage; async, jobs and
    streams answer 503 problem+json; a job running through the outage ends recorded."""

    @pytest.fixture
    def gate(self) -> Iterator[Any]:
        import threading

        event = threading.Event()
        yield event
        event.set()

    @pytest.fixture
    async def client(
        self, own_redis: RedisServer, gate: Any
    ) -> AsyncIterator[AsyncTestClient[Litestar]]:
        def wait_for_gate(wait: bool) -> str:
            if wait:
                gate.wait(30)
            return "done"

        pipeline = pipeline_of(
            step_of(wait_for_gate, wait=param("wait")), parameters={"wait": (bool, False)}
        )
        namespace = fresh_namespace("api")
        app = create_app(
            ServingConfig(redis_url=own_redis.url, redis_prefix=namespace, redis_timeout_s=1.0),
            served_pipeline=pipeline,
        )
        async with AsyncTestClient(app) as test_client:
            yield test_client

    async def test_sync_keeps_working_async_answers_503_and_recovers(
        self, client: AsyncTestClient[Litestar], own_redis: RedisServer, gate: Any
    ) -> None:
        status = (await client.get("/status")).json()
        assert status["job_backend"]["kind"] == "redis"
        assert status["job_backend"]["connected"] is True
        assert status["execution"]["scope"] == "per process"

        running = await client.post("/invoke?mode=async", json={"parameters": {"wait": True}})
        assert running.status_code == 202
        job_id = running.json()["job_id"]
        own_redis.stop()

        assert (await client.post("/invoke", json={"parameters": {}})).status_code == 200
        for method, path in [
            ("POST", "/invoke?mode=async"),
            ("POST", "/invoke?mode=stream"),
            ("GET", f"/jobs/{job_id}"),
            ("GET", "/jobs"),
            ("GET", f"/stream/{job_id}"),
            ("POST", f"/jobs/{job_id}/cancel"),
        ]:
            response = await client.request(method, path, json={"parameters": {}})
            assert response.status_code == 503, (method, path)
            assert response.headers["content-type"].startswith("application/problem+json")
            problem = response.json()
            assert problem["type"] == "urn:zenml-serving:problem:backend-unavailable"
            assert "unreachable" in problem["detail"]
            assert "sync invocations still work" in problem["detail"]
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/status")).json()["job_backend"]["connected"] is False

        gate.set()  # the job finishes while Redis is down: its events wait in the process
        own_redis.start()

        async def completed() -> bool:
            response = await client.get(f"/jobs/{job_id}")
            return response.status_code == 200 and response.json()["status"] == "completed"

        await eventually(completed, "the job's outcome to reach the restarted Redis")
        job = (await client.get(f"/jobs/{job_id}")).json()
        assert job["outputs"] == {"output": "done"}
        again = await client.post("/invoke?mode=async", json={"parameters": {}})
        assert again.status_code == 202

    async def test_events_still_waiting_at_shutdown_are_dropped_and_counted(
        self, own_redis: RedisServer, gate: Any
    ) -> None:
        def wait_for_gate() -> str:
            gate.wait(30)
            return "done"

        app = create_app(
            ServingConfig(
                redis_url=own_redis.url,
                redis_prefix=fresh_namespace("drop"),
                redis_timeout_s=1.0,
                shutdown_grace_s=0.5,
            ),
            served_pipeline=pipeline_of(step_of(wait_for_gate)),
        )
        with log_events() as logs:
            async with AsyncTestClient(app) as client:
                response = await client.post("/invoke?mode=async", json={"parameters": {}})
                assert response.status_code == 202
                own_redis.stop()
                gate.set()  # the job ends while Redis is down; then the service stops
        dropped = [e for e in logs if e["event"] == "job_events_dropped"]
        assert len(dropped) == 1
        assert dropped[0]["job_id"] == response.json()["job_id"]
        assert dropped[0]["count"] >= 1
