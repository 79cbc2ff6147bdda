"""Several granian workers on one host without Redis share their async jobs (issue 22).

`ZENML_SERVING_WORKERS=2` and no `ZENML_SERVING_REDIS_URL`: the service picks the SQLite job
store in its runtime folder. Every request below goes out on a fresh connection, so the
kernel hands it to either worker; a job submitted on one is polled, listed, streamed,
resumed, followed over a WebSocket and cancelled through the other, and none of it may
answer 404. A worker killed mid-job leaves a job that ends `failed` (`OwnerGone`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets.sync.client as ws_client

from tests.conftest import snapshot_of
from tests.e2e.conftest import ServiceProcess, start_service, wait_until
from tests.e2e.sse import read_events
from tests.e2e.test_execution import SLOW, journal_of, slow_params
from tests.e2e.test_faults import FAULTS

pytestmark = pytest.mark.e2e

JOBS = 300


@pytest.fixture(scope="module")
def workers(
    zenml_store_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """One service, two granian workers, no Redis, its own runtime folder."""
    folder = tmp_path_factory.mktemp("local-workers")
    service = start_service(
        snapshot_of(SLOW),
        zenml_store_env,
        folder,
        ZENML_SERVING_WORKERS="2",
        ZENML_SERVING_RUNTIME_DIR=str(folder / "runtime"),
        ZENML_SERVING_SSE_HEARTBEAT="0.5",
    )
    try:
        yield service
    finally:
        service.terminate()


def fresh(method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One request on a new connection (either worker may take it)."""
    return httpx.request(method, url, timeout=30, **kwargs)


def owners_and_totals(service: ServiceProcess) -> dict[str, int]:
    """Each worker's owner name and its count of completed invocations, from /status on
    fresh connections until both workers answered."""
    seen: dict[str, int] = {}

    def both() -> bool:
        status = fresh("GET", f"{service.url}/status").json()
        seen[status["execution"]["owner"]] = status["execution"]["totals"]["completed"]
        return len(seen) == 2

    wait_until(both, what="both workers to answer /status")
    return seen


class TestJobsAcrossWorkers:
    """A few hundred jobs through one port: every poll, stream and cancel finds its job."""

    def test_the_workers_share_the_sqlite_store(self, workers: ServiceProcess) -> None:
        for _ in range(4):
            backend = fresh("GET", f"{workers.url}/status").json()["job_backend"]
            assert backend["kind"] == "sqlite"
            assert backend["shared"] is True

    def test_hundreds_of_jobs_polled_listed_and_streamed_without_a_404(
        self, workers: ServiceProcess, tmp_path: Path
    ) -> None:
        def submit(index: int) -> str:
            response = fresh(
                "POST", f"{workers.url}/invoke?mode=async", json=slow_params(tmp_path / str(index))
            )
            assert response.status_code == 202, response.text
            return str(response.json()["job_id"])

        def poll_until_done(job_id: str) -> dict[str, Any]:
            while True:
                response = fresh("GET", f"{workers.url}/jobs/{job_id}")
                assert response.status_code == 200, f"{job_id}: {response.status_code}"
                job = dict(response.json())
                if job["status"] not in ("queued", "running"):
                    return job
                time.sleep(0.02)

        def stream(job_id: str) -> list[dict[str, Any]]:
            with httpx.stream("GET", f"{workers.url}/stream/{job_id}", timeout=30) as response:
                assert response.status_code == 200, f"{job_id}: {response.status_code}"
                return [e.json() for e in read_events(response) if e.event != "heartbeat"]

        with ThreadPoolExecutor(max_workers=8) as pool:
            job_ids = list(pool.map(submit, range(JOBS)))
            jobs = list(pool.map(poll_until_done, job_ids))
            streams = list(pool.map(stream, job_ids[::10]))

        assert [j["status"] for j in jobs] == ["completed"] * JOBS
        assert all(j["outputs"] == {"output": "first>second>third"} for j in jobs)
        for events in streams:
            assert [e["id"] for e in events] == list(range(1, len(events) + 1))
            assert events[-1]["type"] == "job.completed"
        listed = fresh("GET", f"{workers.url}/jobs", params={"limit": 500}).json()
        assert set(job_ids) <= {j["job_id"] for j in listed["jobs"]}
        assert all("outputs" not in j for j in listed["jobs"]), "outputs: GET /jobs/{id}"
        totals = owners_and_totals(workers)
        assert all(count > 0 for count in totals.values()), f"both workers ran jobs: {totals}"

    def test_a_stream_resumed_with_last_event_id_on_fresh_connections(
        self, workers: ServiceProcess, tmp_path: Path
    ) -> None:
        job = fresh(
            "POST",
            f"{workers.url}/invoke?mode=async",
            json=slow_params(tmp_path / "sse", 0.3, 0.3, 0.3),
        ).json()
        seen: list[dict[str, Any]] = []
        while not seen or seen[-1]["type"] != "job.completed":
            headers = {"Last-Event-ID": str(seen[-1]["id"])} if seen else {}
            with httpx.stream(
                "GET", f"{workers.url}{job['stream']}", headers=headers, timeout=30
            ) as response:
                assert response.status_code == 200
                for event in read_events(response):
                    if event.event != "heartbeat":
                        seen.append(event.json())
                        break  # one event per connection: the next one may be the other worker
        ids = [e["id"] for e in seen]
        assert ids == list(range(1, len(ids) + 1)), "no gap, no duplicate"
        assert seen[-1]["outputs"] == {"output": "first>second>third"}

    def test_cancellations_reach_the_worker_that_runs_each_job(
        self, workers: ServiceProcess, tmp_path: Path
    ) -> None:
        journals = [tmp_path / f"cancel{index}" for index in range(6)]
        job_ids = [
            fresh(
                "POST", f"{workers.url}/invoke?mode=async", json=slow_params(journal, 1.0)
            ).json()["job_id"]
            for journal in journals
        ]
        for journal in journals:
            wait_until(lambda j=journal: "first:start" in journal_of(j), what="the first steps")

        for job_id in job_ids:
            cancelled = fresh("POST", f"{workers.url}/jobs/{job_id}/cancel")
            assert cancelled.status_code == 200
            assert cancelled.json()["status"] == "cancelled"

        for journal in journals:
            wait_until(lambda j=journal: "first:end" in journal_of(j), what="the steps to return")
        time.sleep(0.3)  # give a (wrong) second step the chance to start
        assert all(journal_of(j) == ["first:start", "first:end"] for j in journals)

    def test_a_websocket_follows_and_cancels_jobs_of_either_worker(
        self, workers: ServiceProcess, tmp_path: Path
    ) -> None:
        quick = [
            fresh(
                "POST", f"{workers.url}/invoke?mode=async", json=slow_params(tmp_path / f"w{i}")
            ).json()["job_id"]
            for i in range(6)
        ]
        journal = tmp_path / "slow"
        slow = fresh(
            "POST", f"{workers.url}/invoke?mode=async", json=slow_params(journal, 1.0)
        ).json()["job_id"]
        with ws_client.connect(workers.url.replace("http", "ws") + "/stream") as socket:
            for job_id in quick:
                socket.send(json.dumps({"type": "subscribe", "job_id": job_id}))
            finished: set[str] = set()
            while finished != set(quick):
                message = json.loads(socket.recv(timeout=30))
                assert message["type"] == "event", message
                if message["event"]["type"] == "job.completed":
                    finished.add(message["job_id"])
            wait_until(lambda: "first:start" in journal_of(journal), what="the slow job")
            socket.send(json.dumps({"type": "cancel", "job_id": slow}))
            while (message := json.loads(socket.recv(timeout=30)))["type"] != "cancelled":
                assert message["type"] != "error", message
            assert message == {"type": "cancelled", "job_id": slow, "status": "cancelled"}


class TestKilledWorker:
    """A worker that dies mid-job: its job ends `failed` for whoever asks, nothing hangs."""

    def test_the_job_of_a_killed_worker_ends_failed(
        self, zenml_store_env: dict[str, str], tmp_path: Path
    ) -> None:
        service = start_service(
            snapshot_of(FAULTS),
            zenml_store_env,
            tmp_path,
            ZENML_SERVING_WORKERS="2",
            ZENML_SERVING_RUNTIME_DIR=str(tmp_path / "runtime"),
            ZENML_SERVING_SSE_HEARTBEAT="0.5",
        )
        try:
            accepted = fresh(
                "POST",
                f"{service.url}/invoke?mode=async",
                json={"parameters": {"fault": "exit", "seconds": 1.0}},
            )
            assert accepted.status_code == 202
            job_id = accepted.json()["job_id"]
            events: list[dict[str, Any]] = []
            while not events or events[-1]["type"] != "job.failed":
                # The stream may land on the worker that dies: reconnect where it broke off.
                headers = {"Last-Event-ID": str(events[-1]["id"])} if events else {}
                try:
                    with httpx.stream(
                        "GET", f"{service.url}/stream/{job_id}", headers=headers, timeout=60
                    ) as stream:
                        assert stream.status_code == 200
                        events += [e.json() for e in read_events(stream) if e.event != "heartbeat"]
                except httpx.TransportError:
                    time.sleep(0.2)
            assert [e["id"] for e in events] == list(range(1, len(events) + 1))
            assert (events[0]["type"], events[-1]["type"]) == ("job.queued", "job.failed")

            def settled() -> bool:
                try:
                    response = fresh("GET", f"{service.url}/jobs/{job_id}")
                except httpx.TransportError:
                    return False
                return response.status_code == 200 and response.json()["status"] == "failed"

            wait_until(settled, what="the job to be recorded failed")
            job = fresh("GET", f"{service.url}/jobs/{job_id}").json()
            assert job["error"]["type"] == "OwnerGone"
        finally:
            service.terminate()
