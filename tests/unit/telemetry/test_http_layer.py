"""The outer ASGI layer's server span: propagation, status, errors, quiet routes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.telemetry_support import CANARY, all_attribute_text
from zenml_serving.telemetry.http import HttpTelemetry

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


ROUTES = {"/ok": "/ok", "/health": "/health", "/jobs/abc-123": "/jobs/{job_id}"}
"""Path -> the template Litestar's router would put in the scope (`path_template`)."""


def _serve(answer: Any) -> tuple[HttpTelemetry, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    layer = HttpTelemetry(
        answer, metrics_enabled=False, access_log=False, tracer=provider.get_tracer("test")
    )
    return layer, exporter


def _call(
    layer: HttpTelemetry, path: str, headers: list[tuple[bytes, bytes]] | None = None
) -> list[dict[str, Any]]:
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "scheme": "http",
        "headers": headers or [],
        "client": ("10.0.0.7", 4000),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(layer(scope, receive, send))
    return sent


def _answering(status: int) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] in ROUTES:  # routing, as Litestar does it
            scope["path_template"] = ROUTES[scope["path"]]
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"x"})

    return app


def _only(exporter: InMemorySpanExporter) -> ReadableSpan:
    (span,) = exporter.get_finished_spans()
    return span


def test_continues_the_callers_trace_and_says_so_in_the_response() -> None:
    layer, exporter = _serve(_answering(200))
    sent = _call(layer, "/ok", [(b"traceparent", TRACEPARENT.encode())])
    span = _only(exporter)
    assert span.name == "GET /ok"
    assert span.kind is SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == TRACE_ID
    headers = dict(sent[0]["headers"])
    assert headers[b"x-trace-id"] == TRACE_ID.encode()
    assert headers[b"traceresponse"].startswith(f"00-{TRACE_ID}-".encode())
    assert span.attributes is not None
    assert span.attributes["client.address"] == "10.0.0.7"
    assert span.status.status_code is StatusCode.UNSET


def test_a_5xx_answer_is_an_error_named_by_its_status() -> None:
    layer, exporter = _serve(_answering(503))
    _call(layer, "/ok")
    span = _only(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "503"


def test_an_escaping_exception_is_recorded_by_type_never_by_message() -> None:
    async def crashing(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError(f"could not parse {CANARY}")

    layer, exporter = _serve(crashing)
    with pytest.raises(RuntimeError):
        _call(layer, "/ok")
    span = _only(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "RuntimeError"
    assert [e.name for e in span.events] == ["exception"]
    assert CANARY not in all_attribute_text([span])


def test_probes_make_no_span_and_get_no_trace_headers() -> None:
    layer, exporter = _serve(_answering(200))
    sent = _call(layer, "/health", [(b"traceparent", TRACEPARENT.encode())])
    assert exporter.get_finished_spans() == ()
    assert b"x-trace-id" not in dict(sent[0]["headers"])


def test_named_by_the_route_template_never_the_path() -> None:
    layer, exporter = _serve(_answering(200))
    _call(layer, "/jobs/abc-123")
    span = _only(exporter)
    assert span.name == "GET /jobs/{job_id}"
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/jobs/{job_id}"


def test_a_request_no_route_matched_is_unmatched() -> None:
    layer, exporter = _serve(_answering(404))
    _call(layer, "/nope/1")
    assert _only(exporter).name == "GET unmatched"
