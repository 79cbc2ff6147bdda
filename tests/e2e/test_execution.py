"""Async jobs, streaming, backpressure, timeouts and cancellation, on a real granian process.

The `slow` pipeline's steps sleep for parameter-given seconds and append to a journal file, so
the tests can see from outside the service which steps started.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets.sync.client as ws_client
from websockets.exceptions import ConnectionClosed

from tests.conftest import snapshot_of
from tests.e2e.conftest import ServiceFactory, ServiceProcess, start_service, wait_until
from tests.e2e.sse import read_events

pytestmark = pytest.mark.e2e

SLOW = "tests.pipelines.slow:slow_pipeline"


def journal_of(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def slow_params(
    journal: Path, first: float = 0.0, second: float = 0.0, third: float = 0.0
) -> dict[str, Any]:
    return {
        "parameters": {
            "journal": str(journal),
            "first_s": first,
            "second_s": second,
            "third_s": third,
        }
    }


@pytest.fixture(scope="module")
def limited(
    zenml_store_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """Two slots, two places in line, quick heartbeats."""
    service = start_service(
        snapshot_of(SLOW),
        zenml_store_env,
        tmp_path_factory.mktemp("limited"),
        ZENML_SERVING_MAX_CONCURRENCY="2",
        ZENML_SERVING_MAX_QUEUE_SIZE="2",
        ZENML_SERVING_SSE_HEARTBEAT="0.5",
    )
    yield service
    service.terminate()


async def _burst(url: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        return await asyncio.gather(*(client.post("/invoke", json=b) for b in bodies))


class TestBackpressure:
    """Over capacity: 429 with a computed Retry-After; accepted requests still complete."""

    def test_overload_sheds_with_retry_after_and_accepted_work_completes(
        self, limited: ServiceProcess, tmp_path: Path
    ) -> None:
        # Warm the duration estimate with requests that take at least a second.
        warm = asyncio.run(_burst(limited.url, [slow_params(tmp_path / "w", 1.0)] * 2))
        assert [r.status_code for r in warm] == [200, 200]

        responses = asyncio.run(
            _burst(limited.url, [slow_params(tmp_path / f"j{i}", 1.0) for i in range(8)])
        )
        codes = sorted(r.status_code for r in responses)
        assert codes == [200] * 4 + [429] * 4, "2 running + 2 queued are served, the rest shed"
        for rejected in (r for r in responses if r.status_code == 429):
            problem = rejected.json()
            assert problem["type"] == "urn:zenml-serving:problem:overloaded"
            retry_after = int(rejected.headers["retry-after"])
            # Two waiting over two slots with runs of >= 1 s: at least 2 s, not a constant 1.
            assert retry_after >= 2
            assert problem["retry_after_s"] == retry_after
        for accepted in (r for r in responses if r.status_code == 200):
            assert accepted.json()["outputs"] == {"output": "first>second>third"}
        status = limited.client.get("/status").json()["execution"]
        assert status["totals"]["rejected"] >= 4

    def test_async_submissions_share_the_same_limits(
        self, limited: ServiceProcess, tmp_path: Path
    ) -> None:
        codes = [
            limited.client.post(
                "/invoke?mode=async", json=slow_params(tmp_path / f"a{i}", 1.0)
            ).status_code
            for i in range(6)
        ]
        assert codes == [202, 202, 202, 202, 429, 429]
        wait_until(
            lambda: limited.client.get("/status").json()["execution"]["in_flight"] == 0,
            what="jobs to finish",
        )


class TestCancellation:
    """A cancelled job runs no further step; a disconnected sync client cancels its run."""

    def test_cancelled_job_starts_no_later_step(
        self, limited: ServiceProcess, tmp_path: Path
    ) -> None:
        journal = tmp_path / "cancel"
        accepted = limited.client.post("/invoke?mode=async", json=slow_params(journal, 1.0))
        assert accepted.status_code == 202
        job_id = accepted.json()["job_id"]
        assert accepted.headers["location"] == f"/jobs/{job_id}"
        wait_until(lambda: "first:start" in journal_of(journal), what="the first step")

        cancelled = limited.client.post(f"/jobs/{job_id}/cancel")
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        wait_until(lambda: "first:end" in journal_of(journal), what="the running step to return")
        time.sleep(0.3)  # give a (wrong) second step the chance to start
        assert journal_of(journal) == ["first:start", "first:end"]
        job = limited.client.get(f"/jobs/{job_id}").json()
        assert job["status"] == "cancelled"
        assert [s["status"] for s in job["steps"]] == ["cancelled", "pending", "pending"]

    def test_disconnecting_sync_client_cancels_its_invocation(
        self, limited: ServiceProcess, tmp_path: Path
    ) -> None:
        journal = tmp_path / "disconnect"
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{limited.url}/invoke", json=slow_params(journal, 1.0), timeout=0.3)
        wait_until(lambda: "first:end" in journal_of(journal), what="the running step to return")
        time.sleep(0.3)
        assert journal_of(journal) == ["first:start", "first:end"]
        wait_until(
            lambda: limited.client.get("/status").json()["execution"]["totals"]["cancelled"] >= 1,
            what="the cancellation to be counted",
        )

    def test_cancelling_an_unknown_job_is_404(self, limited: ServiceProcess) -> None:
        response = limited.client.post("/jobs/does-not-exist/cancel")
        assert response.status_code == 404
        assert response.json()["type"] == "urn:zenml-serving:problem:not-found"


class TestJobsApi:
    """Jobs are listed newest first, filtered, paginated, and show per-step progress."""

    def test_job_lifecycle_and_listing(self, limited: ServiceProcess, tmp_path: Path) -> None:
        ids = [
            limited.client.post("/invoke?mode=async", json=slow_params(tmp_path / f"l{i}")).json()[
                "job_id"
            ]
            for i in range(2)
        ]
        wait_until(
            lambda: all(
                limited.client.get(f"/jobs/{i}").json()["status"] == "completed" for i in ids
            ),
            what="both jobs to complete",
        )
        job = limited.client.get(f"/jobs/{ids[1]}").json()
        assert job["outputs"] == {"output": "first>second>third"}
        assert [s["status"] for s in job["steps"]] == ["completed"] * 3
        listing = limited.client.get("/jobs", params={"status": "completed", "limit": 2}).json()
        assert [j["job_id"] for j in listing["jobs"]] == [ids[1], ids[0]]
        assert listing["limit"] == 2
        assert listing["total"] >= 2


class TestServerSentEvents:
    """SSE delivers every event once, across reconnects, then ends with the final event."""

    def test_reconnect_with_last_event_id_loses_nothing(
        self, limited: ServiceProcess, tmp_path: Path
    ) -> None:
        job = limited.client.post(
            "/invoke?mode=async", json=slow_params(tmp_path / "sse", 0.3, 0.3, 0.3)
        ).json()
        seen: list[dict[str, Any]] = []
        with limited.client.stream("GET", job["stream"]) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            for event in read_events(response):
                if event.event == "heartbeat":
                    continue
                seen.append(event.json())
                if len(seen) == 3:
                    break
        last_id = seen[-1]["id"]
        with limited.client.stream(
            "GET", job["stream"], headers={"Last-Event-ID": str(last_id)}
        ) as response:
            for event in read_events(response):
                if event.event != "heartbeat":
                    assert event.id is not None
                    seen.append(event.json())
        ids = [e["id"] for e in seen]
        assert ids == list(range(1, len(ids) + 1)), "no gap, no duplicate"
        types = [e["type"] for e in seen]
        assert types[0] == "job.queued"
        assert types[-1] == "job.completed"
        assert types.count("step.completed") == 3
        assert seen[-1]["outputs"] == {"output": "first>second>third"}

    def test_quiet_stream_gets_heartbeats(self, limited: ServiceProcess, tmp_path: Path) -> None:
        job = limited.client.post(
            "/invoke?mode=async", json=slow_params(tmp_path / "hb", 1.5)
        ).json()
        kinds: list[str] = []
        with limited.client.stream("GET", job["stream"]) as response:
            for event in read_events(response):
                kinds.append(event.event)
        assert "heartbeat" in kinds
        assert kinds[-1] == "job.completed"

    def test_invoke_mode_stream_submits_and_streams_in_one_request(
        self, limited: ServiceProcess, tmp_path: Path
    ) -> None:
        with limited.client.stream(
            "POST", "/invoke?mode=stream", json=slow_params(tmp_path / "one")
        ) as response:
            assert response.status_code == 200
            events = [e.json() for e in read_events(response) if e.event != "heartbeat"]
        assert events[0]["type"] == "job.queued"
        assert events[-1]["type"] == "job.completed"


class TestWebSocket:
    """One socket submits, subscribes and cancels; bad frames close it with a clear code."""

    def _receive_until(self, socket: Any, predicate: Any) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while True:
            message = json.loads(socket.recv(timeout=30))
            messages.append(message)
            if predicate(message):
                return messages

    def test_submit_subscribe_and_cancel_over_one_socket(
        self, limited: ServiceProcess, tmp_path: Path
    ) -> None:
        url = limited.url.replace("http", "ws") + "/stream"
        with ws_client.connect(url) as socket:
            socket.send(
                json.dumps({"type": "invoke", "request_id": "r1", **slow_params(tmp_path / "w1")})
            )
            messages = self._receive_until(
                socket, lambda m: m.get("event", {}).get("type") == "job.completed"
            )
            accepted = next(m for m in messages if m["type"] == "accepted")
            assert accepted["request_id"] == "r1"
            events = [m["event"]["type"] for m in messages if m["type"] == "event"]
            assert events[0] == "job.queued"
            assert events.count("step.completed") == 3

            slow_job = limited.client.post(
                "/invoke?mode=async", json=slow_params(tmp_path / "w2", 1.0)
            ).json()["job_id"]
            socket.send(json.dumps({"type": "subscribe", "job_id": slow_job}))
            socket.send(json.dumps({"type": "cancel", "job_id": slow_job}))
            messages = self._receive_until(socket, lambda m: m["type"] == "cancelled")
            assert messages[-1] == {"type": "cancelled", "job_id": slow_job, "status": "cancelled"}
            assert any(m.get("event", {}).get("type") == "job.cancelled" for m in messages)

            socket.send(json.dumps({"type": "invoke", "parameters": {"first_s": "slow"}}))
            error = self._receive_until(socket, lambda m: m["type"] == "error")[-1]
            assert error["status"] == 422
            assert error["errors"][0]["field"] == "parameters.first_s"

    def test_a_frame_that_is_not_json_closes_with_1003(self, limited: ServiceProcess) -> None:
        url = limited.url.replace("http", "ws") + "/stream"
        with ws_client.connect(url) as socket:
            socket.send("this is not json")
            with pytest.raises(ConnectionClosed) as closed:
                socket.recv(timeout=30)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1003


class TestTimeouts:
    """A timed-out invocation is answered 504 but keeps its slot until the step returns."""

    def test_timeout_is_504_and_the_slot_is_held_until_the_step_returns(
        self, service_factory: ServiceFactory, tmp_path: Path
    ) -> None:
        service = service_factory(
            snapshot_of(SLOW),
            ZENML_SERVING_MAX_CONCURRENCY="1",
            ZENML_SERVING_MAX_QUEUE_SIZE="5",
            ZENML_SERVING_REQUEST_TIMEOUT="2",
        )
        journal = tmp_path / "timeout"
        # The step outlives the 2 s timeout by 1 s; the follower below waits about that second.
        response = service.client.post("/invoke", json=slow_params(journal, 3.0))
        assert response.status_code == 504
        assert response.json()["type"] == "urn:zenml-serving:problem:timeout"
        execution = service.client.get("/status").json()["execution"]
        assert (execution["in_flight"], execution["orphaned"]) == (1, 1)

        # A new request must wait behind the orphaned step (no barging past the limit).
        follower = service.client.post(
            "/invoke?mode=async", json=slow_params(tmp_path / "follower")
        ).json()
        assert service.client.get("/status").json()["execution"]["queued"] == 1
        assert service.client.get(f"/jobs/{follower['job_id']}").json()["status"] == "queued"

        wait_until(lambda: "first:end" in journal_of(journal), what="the step to return")
        wait_until(
            lambda: (
                service.client.get(f"/jobs/{follower['job_id']}").json()["status"] == "completed"
            ),
            what="the follower to run once the slot was freed",
        )
        assert journal_of(journal) == ["first:start", "first:end"], "no step after the timeout"
        execution = service.client.get("/status").json()["execution"]
        assert (execution["in_flight"], execution["orphaned"]) == (0, 0)
        assert execution["totals"]["timed_out"] == 1

    def test_async_job_past_its_timeout_ends_timed_out(
        self, service_factory: ServiceFactory, tmp_path: Path
    ) -> None:
        service = service_factory(snapshot_of(SLOW), ZENML_SERVING_REQUEST_TIMEOUT="1")
        job = service.client.post(
            "/invoke?mode=async", json=slow_params(tmp_path / "t", 2.0)
        ).json()
        wait_until(
            lambda: service.client.get(f"/jobs/{job['job_id']}").json()["status"] == "timed_out",
            what="the job to time out",
        )


class TestDrain:
    """SIGTERM: in-flight work finishes, queued work is answered 503, the process exits 0."""

    def test_sigterm_drains(self, service_factory: ServiceFactory, tmp_path: Path) -> None:
        service = service_factory(
            snapshot_of(SLOW),
            ZENML_SERVING_MAX_CONCURRENCY="1",
            ZENML_SERVING_MAX_QUEUE_SIZE="5",
        )
        journal = tmp_path / "drain"

        async def scenario() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
                running = asyncio.ensure_future(
                    client.post("/invoke", json=slow_params(journal, 1.5))
                )
                while "first:start" not in journal_of(journal):
                    await asyncio.sleep(0.05)
                queued = asyncio.ensure_future(
                    client.post("/invoke", json=slow_params(tmp_path / "queued"))
                )
                await asyncio.sleep(0.3)
                service.process.send_signal(15)
                return list(await asyncio.gather(running, queued, return_exceptions=False))

        running, queued = asyncio.run(scenario())
        assert running.status_code == 200
        assert running.json()["outputs"] == {"output": "first>second>third"}
        assert queued.status_code == 503
        assert queued.json()["type"] == "urn:zenml-serving:problem:shutting-down"
        assert service.process.wait(60) == 0
        assert "drain_finished" in service.log()
