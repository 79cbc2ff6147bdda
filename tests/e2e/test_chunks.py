"""Partial output from a step (`emit`), streamed to SSE clients of a real granian process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets.sync.client as ws_client

from tests.conftest import snapshot_of
from tests.e2e.conftest import ServiceProcess, start_service, wait_until
from tests.e2e.sse import read_events

pytestmark = pytest.mark.e2e

CHUNKS = "tests.pipelines.chunks:chunks_pipeline"
CANARY = "canary-chunk-7d1e"
"""In every chunk: must reach the stream client and nothing else (spans, logs)."""


@pytest.fixture(scope="module")
def service(
    zenml_store_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """Capture `none`, spans printed to the log (the console exporter), room for 1,000 chunks."""
    started = start_service(
        snapshot_of(CHUNKS),
        zenml_store_env,
        tmp_path_factory.mktemp("chunks"),
        ZENML_SERVING_MAX_EVENTS_PER_JOB="2000",
        ZENML_SERVING_CAPTURE_DEFAULT="none",
        OTEL_TRACES_EXPORTER="console",
        OTEL_BSP_SCHEDULE_DELAY="50",
    )
    yield started
    started.terminate()


def submit(service: ServiceProcess, count: int) -> str:
    accepted = service.client.post(
        "/invoke?mode=async", json={"parameters": {"count": count, "secret": CANARY}}
    )
    assert accepted.status_code == 202
    job_id: str = accepted.json()["job_id"]
    return job_id


def chunk_numbers(events: list[dict[str, Any]]) -> list[int]:
    return [e["seq"] for e in events if e["type"] == "step.chunk"]


class TestChunksReachTheStream:
    def test_a_thousand_chunks_arrive_in_order_between_start_and_completion(
        self, service: ServiceProcess
    ) -> None:
        with service.client.stream(
            "POST",
            "/invoke?mode=stream",
            json={"parameters": {"count": 1000, "secret": CANARY}},
        ) as response:
            events = [e.json() for e in read_events(response) if e.event != "heartbeat"]

        chunks = [e for e in events if e["type"] == "step.chunk"]
        assert [c["seq"] for c in chunks] == list(range(1, 1001))
        assert [c["chunk"]["i"] for c in chunks] == list(range(1, 1001))
        assert {c["step"] for c in chunks} == {"chatter"}
        types = [e["type"] for e in events]
        assert types.index("step.started") < types.index("step.chunk")
        assert types.index("step.completed") > len(types) - 3
        assert events[-1]["type"] == "job.completed"
        assert events[-1]["outputs"] == {"output": 1000}  # none dropped
        ids = [int(e["id"]) for e in events]
        assert ids == sorted(ids)

    def test_reconnecting_with_last_event_id_gets_the_rest(self, service: ServiceProcess) -> None:
        job_id = submit(service, 1000)
        first: list[dict[str, Any]] = []
        with service.client.stream("GET", f"/stream/{job_id}") as response:
            for event in read_events(response):
                if event.event != "heartbeat":
                    first.append(event.json())
                if len(chunk_numbers(first)) == 300:
                    break
        last_id = first[-1]["id"]

        with service.client.stream(
            "GET", f"/stream/{job_id}", headers={"Last-Event-ID": str(last_id)}
        ) as response:
            rest = [e.json() for e in read_events(response) if e.event != "heartbeat"]

        assert chunk_numbers(first) + chunk_numbers(rest) == list(range(1, 1001))
        assert rest[0]["id"] == last_id + 1
        assert rest[-1]["type"] == "job.completed"

    def test_chunks_under_capture_none_reach_no_span_and_no_log_line(
        self, service: ServiceProcess
    ) -> None:
        job_id = submit(service, 5)
        with service.client.stream("GET", f"/stream/{job_id}") as response:
            events = [e.json() for e in read_events(response) if e.event != "heartbeat"]
        assert [e["chunk"]["text"] for e in events if e["type"] == "step.chunk"] == [
            f"token {i} {CANARY}" for i in range(1, 6)
        ]
        wait_until(lambda: '"zenml.step.chunks": 5' in service.log(), what="the step span")
        assert CANARY not in service.log()
        status = service.client.get("/status").json()
        assert status["chunks"]["emitted"] >= 5

    def test_websocket_clients_get_the_chunks_too(self, service: ServiceProcess) -> None:
        url = service.url.replace("http://", "ws://") + "/stream"
        seqs: list[int] = []
        with ws_client.connect(url) as socket:
            socket.send(
                json.dumps({"type": "invoke", "parameters": {"count": 10, "secret": CANARY}})
            )
            while True:
                message = json.loads(socket.recv(timeout=30))
                if message["type"] != "event":
                    continue
                event = message["event"]
                if event["type"] == "step.chunk":
                    seqs.append(event["seq"])
                if event["type"] == "job.completed":
                    break
        assert seqs == list(range(1, 11))


class TestBounds:
    def test_a_job_keeps_at_most_its_event_bound_whatever_its_clients_read(
        self, zenml_store_env: dict[str, str], tmp_path: Path
    ) -> None:
        """The history is a window of MAX_EVENTS_PER_JOB: no client makes the server keep
        more; one that reads late (or slowly) gets the newest, with a gap in the ids."""
        service = start_service(
            snapshot_of(CHUNKS), zenml_store_env, tmp_path, ZENML_SERVING_MAX_EVENTS_PER_JOB="100"
        )
        try:
            job_id = submit(service, 1000)
            wait_until(
                lambda: service.client.get(f"/jobs/{job_id}").json()["status"] == "completed",
                what="the job to complete",
            )
            with service.client.stream("GET", f"/stream/{job_id}") as response:
                late = [e.json() for e in read_events(response) if e.event != "heartbeat"]
            assert len(late) == 100
            assert late[-1]["type"] == "job.completed"
            assert chunk_numbers(late) == list(range(1000 - 97, 1001))
        finally:
            service.terminate()
