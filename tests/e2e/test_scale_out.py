"""Scale-out on real granian processes sharing Redis: any process answers for any job.

Two services (A and B, different ports, the machine's Redis, one key prefix) stand for two
replicas; a service with ZENML_SERVING_WORKERS=2 for several workers; a redis-server of the
test's own for the outage tests. The slow pipeline's journal shows from outside which steps
started.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets.sync.client as ws_client

from tests.conftest import snapshot_of
from tests.e2e.conftest import ServiceFactory, ServiceProcess, start_service, wait_until
from tests.e2e.sse import read_events
from tests.e2e.test_execution import SLOW, journal_of, slow_params
from tests.e2e.test_faults import FAULTS
from tests.services import RedisServer, delete_namespace, fresh_namespace, shared_redis_url

pytestmark = [pytest.mark.e2e, pytest.mark.redis]


@pytest.fixture(scope="module")
def prefix() -> Iterator[str]:
    """The key prefix of this module's services in the machine's Redis."""
    shared_redis_url()
    namespace = fresh_namespace("e2e")
    yield namespace
    delete_namespace(namespace)


@pytest.fixture(scope="module")
def replicas(
    zenml_store_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, prefix: str
) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    """Services A and B: one snapshot, one Redis, one prefix, two processes."""
    env = {
        "ZENML_SERVING_REDIS_URL": shared_redis_url(),
        "ZENML_SERVING_REDIS_PREFIX": prefix,
        "ZENML_SERVING_SSE_HEARTBEAT": "0.5",
    }
    folder = tmp_path_factory.mktemp("replicas")
    a = start_service(snapshot_of(SLOW), zenml_store_env, folder, wait=False, **env)
    b = start_service(snapshot_of(SLOW), zenml_store_env, folder, wait=False, **env)
    try:
        a.wait_ready()
        b.wait_ready()
        yield a, b
    finally:
        a.terminate()
        b.terminate()


def status_of(service: ServiceProcess) -> dict[str, Any]:
    return dict(service.client.get("/status").json())


def job_on(service: ServiceProcess, job_id: str) -> dict[str, Any]:
    response = service.client.get(f"/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


class TestReplicas:
    """A job submitted to A is polled, listed, streamed and cancelled through B."""

    def test_both_say_the_backend_is_shared_and_the_limits_their_own(
        self, replicas: tuple[ServiceProcess, ServiceProcess]
    ) -> None:
        a, b = (status_of(s) for s in replicas)
        for status in (a, b):
            assert status["job_backend"]["kind"] == "redis"
            assert status["job_backend"]["shared"] is True
            assert status["job_backend"]["connected"] is True
            assert status["execution"]["scope"] == "per process"
        assert a["job_backend"]["namespace"] == b["job_backend"]["namespace"]
        assert a["execution"]["owner"] != b["execution"]["owner"]

    def test_submit_on_a_poll_and_list_on_b(
        self, replicas: tuple[ServiceProcess, ServiceProcess], tmp_path: Path
    ) -> None:
        a, b = replicas
        accepted = a.client.post("/invoke?mode=async", json=slow_params(tmp_path / "poll", 0.3))
        assert accepted.status_code == 202
        job_id = accepted.json()["job_id"]
        assert job_on(b, job_id)["status"] in ("queued", "running")
        wait_until(lambda: job_on(b, job_id)["status"] == "completed", what="completion on B")
        job = job_on(b, job_id)
        assert job["outputs"] == {"output": "first>second>third"}
        assert [s["status"] for s in job["steps"]] == ["completed"] * 3
        assert job == job_on(a, job_id)
        listed = b.client.get("/jobs", params={"status": "completed", "limit": 500}).json()
        assert job_id in [j["job_id"] for j in listed["jobs"]]

    def test_sse_reconnect_moves_from_a_to_b_without_gap_or_duplicate(
        self, replicas: tuple[ServiceProcess, ServiceProcess], tmp_path: Path
    ) -> None:
        a, b = replicas
        job = a.client.post(
            "/invoke?mode=async", json=slow_params(tmp_path / "sse", 0.3, 0.3, 0.3)
        ).json()
        seen: list[dict[str, Any]] = []
        with a.client.stream("GET", job["stream"]) as response:
            for event in read_events(response):
                if event.event != "heartbeat":
                    seen.append(event.json())
                if len(seen) == 3:
                    break
        with b.client.stream(
            "GET", job["stream"], headers={"Last-Event-ID": str(seen[-1]["id"])}
        ) as response:
            assert response.status_code == 200
            for event in read_events(response):
                if event.event != "heartbeat":
                    assert event.id is not None
                    seen.append(event.json())
        ids = [e["id"] for e in seen]
        assert ids == list(range(1, len(ids) + 1)), "no gap, no duplicate"
        types = [e["type"] for e in seen]
        assert types[0] == "job.queued"
        assert types.count("step.completed") == 3
        assert types[-1] == "job.completed"
        assert seen[-1]["outputs"] == {"output": "first>second>third"}

    def test_cancel_on_b_stops_the_job_running_on_a(
        self, replicas: tuple[ServiceProcess, ServiceProcess], tmp_path: Path
    ) -> None:
        a, b = replicas
        journal = tmp_path / "cancel"
        job_id = a.client.post("/invoke?mode=async", json=slow_params(journal, 1.0)).json()[
            "job_id"
        ]
        wait_until(lambda: "first:start" in journal_of(journal), what="the first step on A")

        cancelled = b.client.post(f"/jobs/{job_id}/cancel")

        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        wait_until(lambda: "first:end" in journal_of(journal), what="the running step to return")
        time.sleep(0.3)  # give a (wrong) second step the chance to start
        assert journal_of(journal) == ["first:start", "first:end"], "no step after the cancel"
        job = job_on(a, job_id)
        assert job["status"] == "cancelled"
        assert [s["status"] for s in job["steps"]] == ["cancelled", "pending", "pending"]
        wait_until(
            lambda: status_of(a)["execution"]["totals"]["cancelled"] >= 1,
            what="A to count the cancellation it carried out",
        )

    def test_websocket_on_b_follows_and_cancels_jobs_submitted_on_a(
        self, replicas: tuple[ServiceProcess, ServiceProcess], tmp_path: Path
    ) -> None:
        a, b = replicas
        quick = a.client.post("/invoke?mode=async", json=slow_params(tmp_path / "w1", 0.3)).json()
        journal = tmp_path / "w2"
        slow = a.client.post("/invoke?mode=async", json=slow_params(journal, 1.0)).json()
        url = b.url.replace("http", "ws") + "/stream"
        with ws_client.connect(url) as socket:
            socket.send(json.dumps({"type": "subscribe", "job_id": quick["job_id"]}))
            events: list[str] = []
            while not events or events[-1] != "job.completed":
                message = json.loads(socket.recv(timeout=30))
                if message["type"] == "event":
                    assert message["job_id"] == quick["job_id"]
                    events.append(message["event"]["type"])
            assert events[0] == "job.queued"
            assert events.count("step.completed") == 3

            wait_until(lambda: "first:start" in journal_of(journal), what="the slow job on A")
            socket.send(json.dumps({"type": "cancel", "job_id": slow["job_id"]}))
            while (message := json.loads(socket.recv(timeout=30)))["type"] != "cancelled":
                pass
            assert message == {
                "type": "cancelled",
                "job_id": slow["job_id"],
                "status": "cancelled",
            }
        wait_until(lambda: "first:end" in journal_of(journal), what="the running step to return")
        time.sleep(0.3)
        assert journal_of(journal) == ["first:start", "first:end"]


class TestWorkers:
    """Several granian workers in one service share jobs through Redis."""

    def test_every_job_is_visible_whichever_worker_answers(
        self, service_factory: ServiceFactory, prefix: str, tmp_path: Path
    ) -> None:
        service = service_factory(
            snapshot_of(SLOW),
            ZENML_SERVING_WORKERS="2",
            ZENML_SERVING_REDIS_URL=shared_redis_url(),
            ZENML_SERVING_REDIS_PREFIX=f"{prefix}-workers",
        )
        try:
            job_ids = []
            for index in range(8):  # a new connection per request: either worker may take it
                response = httpx.post(
                    f"{service.url}/invoke?mode=async",
                    json=slow_params(tmp_path / f"j{index}"),
                    timeout=30,
                )
                assert response.status_code == 202
                job_ids.append(response.json()["job_id"])

            def all_completed() -> bool:
                return all(
                    httpx.get(f"{service.url}/jobs/{j}", timeout=30).json().get("status")
                    == "completed"
                    for j in job_ids
                )

            wait_until(all_completed, what="every job, polled on fresh connections")
            listed = httpx.get(f"{service.url}/jobs", params={"limit": 500}, timeout=30).json()
            assert set(job_ids) <= {j["job_id"] for j in listed["jobs"]}
        finally:
            delete_namespace(f"{prefix}-workers")


class TestDeadProcess:
    """A process that dies mid-job: any other process settles the job, nothing hangs."""

    def test_a_job_whose_worker_died_ends_failed_on_the_other_replica(
        self, zenml_store_env: dict[str, str], prefix: str, tmp_path: Path
    ) -> None:
        env = {
            "ZENML_SERVING_REDIS_URL": shared_redis_url(),
            "ZENML_SERVING_REDIS_PREFIX": f"{prefix}-dead",
            "ZENML_SERVING_SSE_HEARTBEAT": "0.5",
        }
        dying = start_service(snapshot_of(FAULTS), zenml_store_env, tmp_path, wait=False, **env)
        other = start_service(snapshot_of(FAULTS), zenml_store_env, tmp_path, wait=False, **env)
        try:
            dying.wait_ready()
            other.wait_ready()
            accepted = dying.client.post(
                "/invoke?mode=async", json={"parameters": {"fault": "exit", "seconds": 1.0}}
            )
            assert accepted.status_code == 202
            job_id = accepted.json()["job_id"]
            with other.client.stream("GET", f"/stream/{job_id}") as stream:
                events = [e.event for e in read_events(stream) if e.event != "heartbeat"]
            assert events[-1] == "job.failed", "the stream ends instead of beating forever"
            job = job_on(other, job_id)
            assert job["status"] == "failed"
            assert job["error"]["type"] == "OwnerGone"
        finally:
            dying.terminate()
            other.terminate()
            delete_namespace(f"{prefix}-dead")


class TestRedisOutage:
    """Redis stops and comes back under a running service: sync keeps working, async answers
    503 problem+json meanwhile, and everything works again without a restart."""

    def test_sync_works_async_is_503_then_recovers(
        self, service_factory: ServiceFactory, tmp_path: Path
    ) -> None:
        redis_server = RedisServer(log_path=tmp_path / "redis.log").start()
        try:
            service = service_factory(
                snapshot_of(SLOW),
                ZENML_SERVING_REDIS_URL=redis_server.url,
                ZENML_SERVING_REDIS_TIMEOUT="1",
            )
            journal = tmp_path / "through"
            running = service.client.post("/invoke?mode=async", json=slow_params(journal, 1.5))
            assert running.status_code == 202
            job_id = running.json()["job_id"]
            wait_until(lambda: "first:start" in journal_of(journal), what="the job to start")

            redis_server.stop()
            sync = service.client.post("/invoke", json=slow_params(tmp_path / "sync"))
            assert sync.status_code == 200
            assert sync.json()["outputs"] == {"output": "first>second>third"}
            refused = service.client.post("/invoke?mode=async", json=slow_params(tmp_path / "x"))
            assert refused.status_code == 503
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.headers["retry-after"] == "5"
            problem = refused.json()
            assert problem["type"] == "urn:zenml-serving:problem:backend-unavailable"
            assert "Redis" in problem["detail"]
            assert "sync invocations still work" in problem["detail"]
            assert service.client.get(f"/jobs/{job_id}").status_code == 503
            assert service.client.get("/health").status_code == 200
            wait_until(
                lambda: status_of(service)["job_backend"]["connected"] is False,
                what="/status to report the outage",
            )
            wait_until(lambda: "third:end" in journal_of(journal), what="the job to finish")

            redis_server.start()

            def accepted_again() -> bool:
                response = service.client.post(
                    "/invoke?mode=async", json=slow_params(tmp_path / "again")
                )
                return response.status_code == 202

            wait_until(accepted_again, what="async invocations to be accepted again")
            wait_until(
                lambda: job_on(service, job_id)["status"] == "completed",
                what="the job that ran through the outage to be recorded",
            )
            wait_until(
                lambda: status_of(service)["job_backend"]["connected"] is True,
                what="the pub/sub listener to reconnect",
            )
            log = service.log()
            assert log.count('"job_backend_unavailable"') == 1, "logged once per outage"
            assert '"job_backend_recovered"' in log
        finally:
            redis_server.stop()

    def test_startup_without_redis_is_degraded_then_recovers(
        self, service_factory: ServiceFactory, tmp_path: Path
    ) -> None:
        redis_server = RedisServer(log_path=tmp_path / "redis.log")  # not started yet
        try:
            service = service_factory(
                snapshot_of(SLOW),
                ZENML_SERVING_REDIS_URL=redis_server.url,
                ZENML_SERVING_REDIS_TIMEOUT="1",
            )
            assert '"job_backend_degraded"' in service.log()
            sync = service.client.post("/invoke", json=slow_params(tmp_path / "s"))
            assert sync.status_code == 200
            assert (
                service.client.post(
                    "/invoke?mode=async", json=slow_params(tmp_path / "a")
                ).status_code
                == 503
            )
            redis_server.start()
            wait_until(
                lambda: (
                    service.client.post(
                        "/invoke?mode=async", json=slow_params(tmp_path / "b")
                    ).status_code
                    == 202
                ),
                what="async invocations once Redis is up",
            )
        finally:
            redis_server.stop()
