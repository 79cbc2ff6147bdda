"""Traces, metrics and logs of the app in-process (AsyncTestClient, in-memory span exporter)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.telemetry_support import (
    CANARY,
    all_attribute_text,
    by_name,
    gated_pipeline,
    sample,
    served_pipeline,
)
from zenml_serving.app import create_app
from zenml_serving.config import ServingConfig
from zenml_serving.deployment.model import ServedPipeline
from zenml_serving.execution.records import FINAL_EVENTS
from zenml_serving.telemetry import metrics
from zenml_serving.telemetry.logging import WITHHELD
from zenml_serving.telemetry.redaction import REDACTED
from zenml_serving.telemetry.service import Telemetry

pytestmark = pytest.mark.anyio

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Traced:
    """An app with an in-memory span exporter behind the real (redacting, batching) pipeline."""

    def __init__(self, pipeline: ServedPipeline | None = None, **config: Any) -> None:
        self.config = ServingConfig(**{"log_format": "json", **config})
        self.exporter = InMemorySpanExporter()
        self.telemetry = Telemetry(
            self.config, span_exporter=self.exporter, set_global_tracer_provider=False
        )
        self.app = create_app(
            self.config, served_pipeline=pipeline or served_pipeline(), telemetry=self.telemetry
        )

    def spans(self) -> tuple[ReadableSpan, ...]:
        """Every span exported so far."""
        self.telemetry.force_flush()
        return self.exporter.get_finished_spans()


@pytest.fixture
async def traced() -> AsyncIterator[tuple[Traced, AsyncTestClient[Litestar]]]:
    service = Traced()
    async with AsyncTestClient(service.app) as client:
        yield service, client


async def _finished_job(client: AsyncTestClient[Litestar], location: str) -> dict[str, Any]:
    for _ in range(500):
        job: dict[str, Any] = (await client.get(location)).json()
        if job["status"] not in ("queued", "running"):
            return job
        await asyncio.sleep(0.01)
    raise AssertionError(f"job did not finish: {job}")


class TestSpanTree:
    """Server span -> invocation span -> a span per step, continuing the caller's trace."""

    async def test_sync_invocation(self, traced: tuple[Traced, AsyncTestClient[Litestar]]) -> None:
        service, client = traced
        response = await client.post(
            "/invoke", json={"parameters": {"text": " hi "}}, headers={"traceparent": TRACEPARENT}
        )
        assert response.status_code == 200
        assert response.headers["x-trace-id"] == TRACE_ID
        assert response.json()["trace_id"] == TRACE_ID
        version, trace_id, span_id, flags = response.headers["traceresponse"].split("-")
        assert (version, trace_id, flags) == ("00", TRACE_ID, "01")

        spans = by_name(service.spans())
        server = spans["POST /invoke"]
        invocation = spans["invoke obs_pipeline"]
        assert server.kind is SpanKind.SERVER
        assert format(server.context.span_id, "016x") == span_id
        assert server.parent is not None
        assert format(server.parent.span_id, "016x") == PARENT_SPAN_ID
        assert server.attributes is not None
        assert server.attributes["http.route"] == "/invoke"
        assert server.attributes["http.request.method"] == "POST"
        assert server.attributes["http.response.status_code"] == 200
        assert server.status.status_code is StatusCode.UNSET
        assert invocation.parent is not None
        assert invocation.parent.span_id == server.context.span_id
        for name in ("step clean", "step shout"):
            step = spans[name]
            assert step.parent is not None
            assert step.parent.span_id == invocation.context.span_id
        assert {s.context.trace_id for s in spans.values()} == {int(TRACE_ID, 16)}
        assert invocation.attributes is not None
        assert invocation.attributes["zenml.invocation.status"] == "completed"
        assert spans["step clean"].start_time <= spans["step shout"].start_time

    async def test_route_template_names_the_server_span(
        self, traced: tuple[Traced, AsyncTestClient[Litestar]]
    ) -> None:
        service, client = traced
        await client.get("/jobs/0c1e5a4e-aaaa-bbbb-cccc-000000000000")
        await client.get("/no/such/thing")
        names = {s.name for s in service.spans()}
        assert {"GET /jobs/{job_id}", "GET unmatched"} <= names
        assert not any("0c1e5a4e" in n or "/no/such" in n for n in names)

    async def test_async_job_is_linked_to_the_submitting_request(
        self, traced: tuple[Traced, AsyncTestClient[Litestar]]
    ) -> None:
        service, client = traced
        accepted = await client.post(
            "/invoke?mode=async", json={"parameters": {}}, headers={"traceparent": TRACEPARENT}
        )
        assert accepted.status_code == 202
        assert accepted.headers["x-trace-id"] == TRACE_ID
        job = await _finished_job(client, accepted.headers["location"])
        assert job["status"] == "completed"
        assert job["trace_id"] == TRACE_ID

        spans = by_name(service.spans())
        submit = next(s for s in service.spans() if s.name == "POST /invoke")
        invocation = spans["invoke obs_pipeline"]
        assert invocation.attributes is not None
        assert invocation.attributes["zenml.job.id"] == job["job_id"]
        assert [link.context.span_id for link in invocation.links] == [submit.context.span_id]
        assert invocation.links[0].attributes == {"zenml.link.kind": "submitted_by"}
        assert invocation.parent is not None
        assert invocation.parent.span_id == submit.context.span_id

    async def test_failed_step(self, traced: tuple[Traced, AsyncTestClient[Litestar]]) -> None:
        service, client = traced
        response = await client.post("/invoke", json={"parameters": {"fail": True}})
        assert response.status_code == 500
        spans = by_name(service.spans())
        step = spans["step shout"]
        assert step.status.status_code is StatusCode.ERROR
        assert step.attributes is not None
        assert step.attributes["zenml.step.status"] == "failed"
        assert [e.name for e in step.events] == ["exception"]
        assert spans["invoke obs_pipeline"].status.status_code is StatusCode.ERROR
        assert spans["step clean"].status.status_code is StatusCode.UNSET
        server = spans["POST /invoke"]
        assert server.status.status_code is StatusCode.ERROR  # a 5xx is the server's error
        assert server.attributes is not None
        assert server.attributes["http.response.status_code"] == 500
        assert server.attributes["error.type"] == "500"

    async def test_client_errors_leave_the_server_span_unset_and_the_query_out(
        self, traced: tuple[Traced, AsyncTestClient[Litestar]]
    ) -> None:
        service, client = traced
        response = await client.post(
            f"/invoke?token={CANARY}",
            json={"parameters": {"nope": 1}},
            headers={"user-agent": "t/1"},
        )
        assert response.status_code == 422  # names the unknown parameter
        assert response.headers["x-trace-id"]
        server = by_name(service.spans())["POST /invoke"]
        assert server.status.status_code is StatusCode.UNSET  # 4xx: the client's error
        assert server.attributes is not None
        assert server.attributes["http.response.status_code"] == 422
        assert server.attributes["url.path"] == "/invoke"
        assert server.attributes["user_agent.original"] == "t/1"
        assert CANARY not in all_attribute_text(service.spans())

    async def test_websocket_connection_is_the_parent_of_its_invocations(
        self, traced: tuple[Traced, AsyncTestClient[Litestar]]
    ) -> None:
        service, client = traced
        with await client.websocket_connect("/stream") as socket:
            socket.send_json({"type": "invoke", "parameters": {"text": "hi"}})
            final = None
            while final is None:
                message = socket.receive_json(timeout=10)
                if message["type"] == "event" and message["event"]["type"] in FINAL_EVENTS:
                    final = message["event"]["type"]
            assert final == "job.completed"
        for _ in range(500):  # the server span ends when the connection's handler returns
            spans = by_name(service.spans())
            if "WS /stream" in spans:
                break
            await asyncio.sleep(0.01)
        server = spans["WS /stream"]
        assert server.kind is SpanKind.SERVER
        invocation = spans["invoke obs_pipeline"]
        assert invocation.context.trace_id == server.context.trace_id
        assert invocation.parent is not None
        assert invocation.parent.span_id == server.context.span_id

    async def test_an_unsampled_request_makes_no_spans(self) -> None:
        service = Traced()
        async with AsyncTestClient(service.app) as client:
            unsampled = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-00"
            response = await client.post(
                "/invoke", json={"parameters": {}}, headers={"traceparent": unsampled}
            )
        assert response.status_code == 200
        assert response.headers["x-trace-id"] == TRACE_ID  # still correlates with the logs
        assert response.headers["traceresponse"].endswith("-00")
        assert response.json()["trace_id"] == TRACE_ID
        assert service.spans() == ()

    async def test_metrics_and_health_make_no_spans(
        self, traced: tuple[Traced, AsyncTestClient[Litestar]]
    ) -> None:
        service, client = traced
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/livez")).status_code == 200
        assert "x-trace-id" not in (await client.get("/metrics")).headers
        assert service.spans() == ()


_METADATA = ("names", "types", "lengths")


def _step_attributes(service: Traced) -> dict[str, dict[str, Any]]:
    return {s.name: dict(s.attributes or {}) for s in service.spans() if s.name.startswith("step ")}


class TestCaptureModes:
    """The capture decision decides span content; redaction applies to everything."""

    async def _run(self, mode: str, *, fail: bool = False) -> Traced:
        service = Traced()
        async with AsyncTestClient(service.app) as client:
            await client.post(
                "/invoke",
                json={
                    "parameters": {"text": "hello", "api_key": CANARY, "fail": fail},
                    "capture_override": {"mode": mode},
                },
            )
        return service

    async def test_full_records_redacted_previews(self) -> None:
        service = await self._run("full")
        clean = _step_attributes(service)["step clean"]
        assert clean["zenml.step.input.text.preview"] == '"hello"'
        assert clean["zenml.step.input.text.truncated"] is False
        # The preview was redacted, then the span processor masked the secret-named key.
        assert clean["zenml.step.input.api_key.preview"] == REDACTED
        assert json.loads(clean["zenml.step.output.output.preview"]) == {
            "text": "hello",
            "api_key": "[REDACTED]",
        }
        assert clean["zenml.step.input.types"] == ("str", "str")
        invocation = dict(by_name(service.spans())["invoke obs_pipeline"].attributes or {})
        assert invocation["zenml.capture.mode"] == "full"
        assert invocation["zenml.capture.override_applied"] is True
        parameters = json.loads(invocation["zenml.invocation.parameters.preview"])
        assert parameters == {"text": "hello", "api_key": REDACTED, "fail": False}

    async def test_metadata_records_types_and_sizes_only(self) -> None:
        service = await self._run("metadata", fail=True)
        steps = _step_attributes(service)
        clean = steps["step clean"]
        assert clean["zenml.step.input.names"] == ("text", "api_key")
        assert clean["zenml.step.input.types"] == ("str", "str")
        assert clean["zenml.step.input.lengths"] == (5, len(CANARY))
        assert clean["zenml.step.output.types"] == ("dict",)
        metadata = {f"zenml.step.{d}.{k}" for d in ("input", "output") for k in _METADATA}
        assert not any(k.startswith("zenml.step.input.") and k not in metadata for k in clean)
        shout = next(s for s in service.spans() if s.name == "step shout")
        assert shout.status.description == "ValueError"
        assert shout.events[0].attributes == {"exception.type": "ValueError"}
        assert "hello" not in all_attribute_text(service.spans())

    async def test_errors_only_records_the_failing_step(self) -> None:
        service = await self._run("errors_only", fail=True)
        steps = _step_attributes(service)
        assert "zenml.step.input.text.preview" not in steps["step clean"]
        assert steps["step shout"]["zenml.step.input.fail.preview"] == "true"
        shout = next(s for s in service.spans() if s.name == "step shout")
        assert "refusing hello" in str(shout.status.description)

    async def test_none_keeps_ids_names_and_timing_only(self) -> None:
        service = await self._run("none", fail=True)
        steps = _step_attributes(service)
        assert steps["step clean"] == {"zenml.step.name": "clean", "zenml.step.status": "completed"}
        assert steps["step shout"] == {"zenml.step.name": "shout", "zenml.step.status": "failed"}
        invocation = by_name(service.spans())["invoke obs_pipeline"]
        assert set(invocation.attributes or {}) == {
            "zenml.invocation.id",
            "zenml.invocation.mode",
            "zenml.invocation.status",
        }
        assert invocation.status.description is None
        assert all(s.end_time and s.start_time for s in service.spans())

    async def test_canary_secret_is_never_exported(self) -> None:
        holder: dict[str, Any] = {}

        def third_party(text: str, api_key: str) -> dict[str, str]:
            tracer = holder["telemetry"].tracer_provider.get_tracer("third.party.client")
            with tracer.start_as_current_span(
                "client call", attributes={"db.password": api_key, "query": f"key={api_key}"}
            ) as span:
                span.add_event("retry", {"authorization": f"Bearer {api_key}"})
            return {"text": text, "api_key": api_key}

        pipeline = served_pipeline()
        steps = (type(pipeline.steps[0])(**{**_slots(pipeline.steps[0]), "function": third_party}),)
        steps += pipeline.steps[1:]
        service = Traced(type(pipeline)(**{**pipeline.__dict__, "steps": steps}))
        holder["telemetry"] = service.telemetry
        async with AsyncTestClient(service.app) as client:
            response = await client.post(
                f"/invoke?token={CANARY}&mode=sync",
                json={
                    "parameters": {"text": f"password={CANARY}", "api_key": CANARY},
                    "capture_override": {"mode": "full"},
                },
                headers={"authorization": f"Bearer {CANARY}", "cookie": f"session={CANARY}"},
            )
            assert response.status_code == 200
        spans = service.spans()
        assert "client call" in {s.name for s in spans}
        assert CANARY not in all_attribute_text(spans)


def _slots(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}


class TestTracingOff:
    """OTEL_SDK_DISABLED=true: no spans, no trace ids, everything else works."""

    async def test_no_trace_ids(self) -> None:
        app = create_app(ServingConfig(otel_sdk_disabled=True), served_pipeline=served_pipeline())
        async with AsyncTestClient(app) as client:
            response = await client.post("/invoke", json={"parameters": {}})
            assert response.status_code == 200
            assert "x-trace-id" not in response.headers
            assert response.json().get("trace_id") is None
            assert (await client.get("/metrics")).status_code == 200


class TestMetrics:
    """Counts follow a scripted set of requests, 429s included."""

    async def test_content_type_is_one_that_prometheus_parses(self) -> None:
        app = create_app(ServingConfig(), served_pipeline=served_pipeline())
        async with AsyncTestClient(app) as client:
            text = await client.get("/metrics")
            open_metrics = await client.get(
                "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
            )
        # Exactly one charset: Prometheus 3 refuses a scrape whose Content-Type it cannot parse.
        assert text.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert open_metrics.headers["content-type"] == (
            "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"
        )

    async def test_requests_invocations_and_steps(self) -> None:
        app = create_app(ServingConfig(), served_pipeline=served_pipeline())
        async with AsyncTestClient(app) as client:
            before = (await client.get("/metrics")).text
            for _ in range(2):
                assert (await client.post("/invoke", json={"parameters": {}})).status_code == 200
            fail = await client.post("/invoke", json={"parameters": {"fail": True}})
            assert fail.status_code == 500
            bad = await client.post("/invoke", json={"parameters": {"nope": 1}})
            assert bad.status_code == 422
            assert (await client.get("/nope")).status_code == 404
            after = (await client.get("/metrics")).text

        def delta(name: str, **labels: str) -> float:
            return sample(after, name, **labels) - sample(before, name, **labels)

        http = "zenml_serving_http_requests_total"
        assert delta(http, route="/invoke", method="POST", status="200") == 2
        assert delta(http, route="/invoke", method="POST", status="500") == 1
        assert delta(http, route="/invoke", method="POST", status="422") == 1
        assert delta(http, route="unmatched", method="GET", status="404") == 1
        assert delta(http, route="/metrics", method="GET", status="200") == 1
        assert delta("zenml_serving_http_request_duration_seconds_count", route="/invoke") == 4
        invocations = "zenml_serving_invocations_total"
        assert delta(invocations, mode="sync", outcome="completed") == 2
        assert delta(invocations, mode="sync", outcome="failed") == 1
        steps = "zenml_serving_step_duration_seconds_count"
        assert delta(steps, step="clean", status="completed") == 3
        assert delta(steps, step="shout", status="completed") == 2
        assert delta(steps, step="shout", status="failed") == 1
        failures = "zenml_serving_step_failures_total"
        assert delta(failures, step="shout", error_type="ValueError") == 1
        assert sample(after, "zenml_serving_build_info", pipeline="obs_pipeline") == 1

    async def test_429s_counted_where_the_response_leaves(self) -> None:
        gate = threading.Event()
        app = create_app(
            ServingConfig(max_concurrency=1, max_queue_size=0), served_pipeline=gated_pipeline(gate)
        )
        async with AsyncTestClient(app) as client:
            before = (await client.get("/metrics")).text
            try:
                # An async job holds the only slot; the line has no room: the rest get 429.
                holder = await client.post("/invoke?mode=async", json={})
                assert holder.status_code == 202
                await _until_in_flight(client, 1)
                during = (await client.get("/metrics")).text
                rejected = [await client.post("/invoke", json={}) for _ in range(3)]
                rejected.append(await client.post("/invoke?mode=async", json={}))
                # Shed before the body is read: even a malformed one is a 429, not a 400.
                malformed = await client.post(
                    "/invoke", content=b"{not json", headers={"content-type": "application/json"}
                )
                rejected.append(malformed)
                assert [r.status_code for r in rejected] == [429] * 5
                assert all("retry-after" in r.headers for r in rejected)
                totals = (await client.get("/status")).json()["execution"]["totals"]
                assert totals["rejected"] == 5
            finally:
                gate.set()
            job = await _finished_job(client, holder.headers["location"])
            assert job["status"] == "completed"
            after = (await client.get("/metrics")).text

        def delta(name: str, **labels: str) -> float:
            return sample(after, name, **labels) - sample(before, name, **labels)

        http = "zenml_serving_http_requests_total"
        assert delta(http, route="/invoke", status="429") == 5
        assert delta(http, route="/invoke", status="202") == 1
        assert delta("zenml_serving_rejections_total", reason="overloaded") == 5
        invocations = "zenml_serving_invocations_total"
        assert delta(invocations, mode="sync", outcome="rejected") == 4
        assert delta(invocations, mode="async", outcome="rejected") == 1
        assert delta(invocations, mode="async", outcome="completed") == 1
        assert sample(during, "zenml_serving_executions_in_flight") == 1
        assert sample(during, "zenml_serving_concurrency_limit") == 1
        assert sample(during, "zenml_serving_queue_capacity") == 0
        assert sample(during, "zenml_serving_jobs", state="running") == 1
        assert sample(after, "zenml_serving_executions_in_flight") == 0
        assert sample(after, "zenml_serving_jobs", state="completed") == 1
        assert sample(after, "zenml_serving_jobs", state="running") == 0

    async def test_429_raised_by_middleware_is_counted_as_429(self) -> None:
        """Litestar's own Prometheus middleware gets this one wrong (STYLE.md)."""
        from litestar import get
        from litestar.exceptions import TooManyRequestsException
        from litestar.middleware import ASGIMiddleware

        from zenml_serving.telemetry import http

        class Limiter(ASGIMiddleware):
            async def handle(self, scope: Any, receive: Any, send: Any, next_app: Any) -> None:
                raise TooManyRequestsException()

        @get("/limited")
        async def limited() -> str:
            return "never"

        app = Litestar([limited], middleware=[Limiter()])
        http.install(app, metrics_enabled=True, access_log=False, tracer=None)
        name = "zenml_serving_http_requests_total"
        labels = {"route": "/limited", "method": "GET", "status": "429"}
        before = metrics.REGISTRY.get_sample_value(name, labels) or 0.0
        async with AsyncTestClient(app) as client:
            assert (await client.get("/limited")).status_code == 429
        assert metrics.REGISTRY.get_sample_value(name, labels) == before + 1


async def _until_in_flight(client: AsyncTestClient[Litestar], count: int) -> None:
    for _ in range(1000):
        status = (await client.get("/status")).json()
        if status["execution"]["in_flight"] == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"in-flight executions never reached {count}")


class TestLogs:
    """JSON lines carry trace ids; the access log has route, status, duration; no payloads."""

    @staticmethod
    def _lines(capfd: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
        return [
            json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")
        ]

    async def test_access_log_and_job_lines(self, capfd: pytest.CaptureFixture[str]) -> None:
        service = Traced(access_log=True)
        async with AsyncTestClient(service.app) as client:
            accepted = await client.post(
                f"/invoke?mode=async&token={CANARY}",
                json={"parameters": {"text": CANARY}},
                headers={"traceparent": TRACEPARENT},
            )
            job = await _finished_job(client, accepted.headers["location"])
            await client.get("/health")
        lines = self._lines(capfd)
        access = [e for e in lines if e["event"] == "http_request"]
        submit = next(e for e in access if e["method"] == "POST")
        assert submit["route"] == "/invoke"
        assert submit["path"] == "/invoke"
        assert submit["status"] == 202
        assert submit["duration_ms"] >= 0
        assert submit["trace_id"] == TRACE_ID
        assert len(submit["span_id"]) == 16
        assert {"timestamp", "level", "logger"} <= set(submit)
        assert not any(e["route"] == "/health" for e in access)  # probes log at DEBUG
        finished = next(e for e in lines if e["event"] == "invocation_finished")
        assert finished["job_id"] == finished["invocation_id"] == job["job_id"]
        assert finished["trace_id"] == TRACE_ID
        assert finished["status"] == "completed"
        assert CANARY not in json.dumps(lines)

    @pytest.mark.parametrize("mode", ["metadata", "none"])
    async def test_no_payloads_without_capture(
        self, mode: str, capfd: pytest.CaptureFixture[str]
    ) -> None:
        service = Traced(log_level="DEBUG", capture_default=mode)
        async with AsyncTestClient(service.app) as client:
            for fail in (False, True):
                await client.post(
                    "/invoke?mode=async", json={"parameters": {"text": CANARY, "fail": fail}}
                )
            await asyncio.sleep(0.2)
        lines = self._lines(capfd)
        assert any(e["event"] == "step_finished" for e in lines)
        failure = next(e for e in lines if e["event"] == "step_failed")
        assert failure["exception"][0]["exc_value"] == WITHHELD
        assert failure["exception"][0]["exc_type"] == "ValueError"
        assert CANARY not in json.dumps(lines)

    async def test_full_capture_logs_redacted_previews_at_debug(
        self, capfd: pytest.CaptureFixture[str]
    ) -> None:
        service = Traced(log_level="DEBUG", capture_default="full")
        async with AsyncTestClient(service.app) as client:
            await client.post(
                "/invoke", json={"parameters": {"text": "visible", "api_key": CANARY}}
            )
        step = next(e for e in self._lines(capfd) if e["event"] == "step_finished")
        assert step["step"] == "clean"
        assert step["payload"]["zenml.step.input.text.preview"] == '"visible"'
        assert len(step["trace_id"]) == 32
        assert CANARY not in json.dumps(step)


class TestWebSocketStreams:
    """An open WebSocket counts as an open stream until it closes."""

    def test_open_streams_websocket(self) -> None:
        from litestar.testing import TestClient

        app = create_app(ServingConfig(), served_pipeline=served_pipeline())
        gauge = "zenml_serving_open_streams"
        labels = {"kind": "websocket"}
        with TestClient(app) as client:
            before = metrics.REGISTRY.get_sample_value(gauge, labels) or 0.0
            with client.websocket_connect("/stream") as socket:
                socket.send_json({"type": "ping"})
                assert socket.receive_json() == {"type": "pong"}
                assert metrics.REGISTRY.get_sample_value(gauge, labels) == before + 1
            for _ in range(500):
                if metrics.REGISTRY.get_sample_value(gauge, labels) == before:
                    break
                time.sleep(0.01)
            assert metrics.REGISTRY.get_sample_value(gauge, labels) == before
