"""Metrics and traces of a real service: two granian workers, multiprocess metrics, OTLP out.

The numbers are compared with what the client saw (each request's status), never with
wall-clock times.
"""

from __future__ import annotations

import http.server
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import snapshot_of
from tests.e2e.conftest import ServiceFactory, ServiceProcess, wait_until
from tests.promtool import require_promtool
from tests.telemetry_support import CANARY, sample

pytestmark = pytest.mark.e2e

GATED = "tests.pipelines.gated:gated_pipeline"
TEXT = "examples.text_pipeline:text_pipeline"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
REQUESTS = 6


def _until(condition: Callable[[], bool], what: str, limit_s: float = 60.0) -> None:
    wait_until(condition, limit_s, what)


def _scrape(service: ServiceProcess) -> str:
    response = service.client.get("/metrics")
    assert response.status_code == 200
    return response.text


@pytest.fixture
def two_workers(service_factory: ServiceFactory, tmp_path: Path) -> ServiceProcess:
    """A service with two workers, one slot each and no waiting line."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_999999.db").write_bytes(b"stale: from an earlier run")
    service = service_factory(
        snapshot_of(GATED),
        ZENML_SERVING_WORKERS="2",
        ZENML_SERVING_MAX_CONCURRENCY="1",
        ZENML_SERVING_MAX_QUEUE_SIZE="0",
        ZENML_SERVING_METRICS_INTERVAL="0.1",
        PROMETHEUS_MULTIPROC_DIR=str(folder),
    )
    # Both workers report: their per-worker limits of 1 add up to 2.
    _until(
        lambda: sample(_scrape(service), "zenml_serving_concurrency_limit") == 2,
        "both workers reporting metrics",
    )
    assert not (folder / "counter_999999.db").exists()
    return service


class TestTwoWorkers:
    """Counts from every worker are merged, whichever worker answers the scrape."""

    def test_requests_and_429s_add_up(self, two_workers: ServiceProcess, tmp_path: Path) -> None:
        service = two_workers
        gate = tmp_path / "gate"
        statuses: list[int] = []

        def call() -> None:
            # A client per request: new connections spread over the workers.
            with httpx.Client(base_url=service.url, timeout=90.0) as client:
                response = client.post(
                    "/invoke", json={"parameters": {"gate": str(gate), "limit_s": 60}}
                )
                statuses.append(response.status_code)

        threads = [threading.Thread(target=call) for _ in range(REQUESTS)]
        for thread in threads:
            thread.start()
        # Every request either got its 429 already or holds a slot.
        _until(
            lambda: (
                len(statuses) + sample(_scrape(service), "zenml_serving_executions_in_flight")
                == REQUESTS
            ),
            "all requests admitted or rejected",
        )
        gate.touch()
        for thread in threads:
            thread.join(90)
        rejected, completed = statuses.count(429), statuses.count(200)
        assert rejected + completed == REQUESTS, statuses
        assert rejected >= REQUESTS - 2  # two slots in all

        for _ in range(4):  # any worker may answer: all must agree
            body = _scrape(service)
            http = "zenml_serving_http_requests_total"
            assert sample(body, http, route="/invoke", method="POST", status="429") == rejected
            assert sample(body, http, route="/invoke", method="POST", status="200") == completed
            assert sample(body, "zenml_serving_rejections_total", reason="overloaded") == rejected
            invocations = "zenml_serving_invocations_total"
            assert sample(body, invocations, mode="sync", outcome="rejected") == rejected
            assert sample(body, invocations, mode="sync", outcome="completed") == completed
            steps = "zenml_serving_step_duration_seconds_count"
            assert sample(body, steps, step="wait_for_gate", status="completed") == completed
            assert sample(body, "zenml_serving_queue_capacity") == 0
            assert sample(body, "zenml_serving_build_info", pipeline="gated_pipeline") == 1

        # The exposition of the merged workers passes promtool's lint.
        promtool = require_promtool()
        result = subprocess.run(
            [promtool, "check", "metrics"],
            input=_scrape(service),
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def test_open_sse_streams_then_workers_exit(
        self, two_workers: ServiceProcess, tmp_path: Path
    ) -> None:
        service = two_workers
        gate = tmp_path / "stream-gate"
        accepted = service.client.post(
            "/invoke?mode=async", json={"parameters": {"gate": str(gate), "limit_s": 60}}
        )
        assert accepted.status_code == 202
        events: list[str] = []

        def follow() -> None:
            # The job lives in the worker that accepted it (in-memory backend): follow it on
            # the same kept-alive connection.
            with service.client.stream("GET", accepted.json()["stream"]) as stream:
                events.extend(line for line in stream.iter_lines() if line.startswith("event:"))

        follower = threading.Thread(target=follow)
        follower.start()
        streams = "zenml_serving_open_streams"
        _until(lambda: sample(_scrape(service), streams, kind="sse") == 1, "the stream counted")
        gate.touch()
        follower.join(90)
        assert "event: job.completed" in events
        _until(lambda: sample(_scrape(service), streams, kind="sse") == 0, "the stream uncounted")
        _until(
            lambda: sample(_scrape(service), "zenml_serving_jobs", state="completed") == 1,
            "the completed job counted",
        )

        # Workers that stop mark themselves dead: their live gauges stop counting.
        folder = tmp_path / "metrics"
        assert list(folder.glob("gauge_livesum_*.db"))
        assert service.terminate() == 0
        assert not list(folder.glob("gauge_live*.db")), sorted(p.name for p in folder.iterdir())


class _Sink(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver that keeps what it is sent."""

    bodies: list[bytes]

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        type(self).bodies.append(self.path.encode() + b" " + self.rfile.read(length))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def otlp_sink() -> Iterator[tuple[str, list[bytes]]]:
    """A local OTLP/HTTP endpoint on loopback and the request bodies it received."""
    bodies: list[bytes] = []
    handler = type("Sink", (_Sink,), {"bodies": bodies})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    finally:
        server.shutdown()
        server.server_close()


class TestOtlpExport:
    """With an OTLP endpoint set, spans leave the process, redacted, in the caller's trace."""

    def test_spans_reach_the_collector(
        self, service_factory: ServiceFactory, otlp_sink: tuple[str, list[bytes]]
    ) -> None:
        endpoint, bodies = otlp_sink
        service = service_factory(
            snapshot_of(TEXT),
            OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
            OTEL_BSP_SCHEDULE_DELAY="50",
            ZENML_SERVING_CAPTURE_DEFAULT="full",
        )
        response = service.client.post(
            f"/invoke?api_key={CANARY}",
            json={"parameters": {"message": f"token={CANARY} is fast"}},
            headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"},
        )
        assert response.status_code == 200
        assert response.headers["x-trace-id"] == TRACE_ID
        expected = (b"POST /invoke", b"invoke text_pipeline", b"step normalise", b"step score")
        # Spans end (and are exported) in batches: the server span is the last to end.
        _until(
            lambda: all(span in b"".join(bodies) for span in expected),
            "all spans of the request exported",
        )
        assert all(body.startswith(b"/v1/traces ") for body in bodies)
        exported = b"".join(bodies)
        assert bytes.fromhex(TRACE_ID) in exported
        assert CANARY.encode() not in exported
