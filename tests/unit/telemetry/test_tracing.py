"""Tracer provider, redacting span processor and route-named server spans."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Link, Status, StatusCode

from tests.telemetry_support import CANARY, all_attribute_text
from zenml_serving.config import ServingConfig
from zenml_serving.telemetry.http import server_span_name
from zenml_serving.telemetry.redaction import REDACTED, default_redact
from zenml_serving.telemetry.tracing import (
    RedactingSpanProcessor,
    build_tracer_provider,
    current_trace_attributes,
)


class TestRedactingSpanProcessor:
    """The exporter gets a redacted copy; attributes of every kind are covered."""

    def test_exported_copy_is_redacted(self) -> None:
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(
            RedactingSpanProcessor(SimpleSpanProcessor(exporter), default_redact)
        )
        tracer = provider.get_tracer("third.party")
        linked = tracer.start_span("linked")
        linked.end()
        span = tracer.start_span(
            "work",
            attributes={"db.password": CANARY, "url.query": f"a=1&token={CANARY}", "n": 3},
            links=[Link(linked.get_span_context(), {"session": CANARY})],
        )
        span.add_event("exception", {"exception.message": f'{{"api_key": "{CANARY}"}}'})
        span.set_status(Status(StatusCode.ERROR, f"failed with secret={CANARY}"))
        span.end()

        exported = exporter.get_finished_spans()
        assert CANARY not in all_attribute_text(exported)
        work = exported[-1]
        assert work.attributes is not None
        assert work.attributes["db.password"] == REDACTED
        assert work.attributes["n"] == 3
        assert work.attributes["url.query"].startswith("a=1&token=")
        assert work.status.status_code is StatusCode.ERROR
        assert work.context == span.get_span_context()

    def test_without_exporter_nothing_is_exported(self) -> None:
        provider = build_tracer_provider(ServingConfig(), default_redact)
        assert provider._active_span_processor._span_processors == ()

    def test_otlp_configured_means_a_redacting_processor(self) -> None:
        config = ServingConfig(otel_traces_exporter="otlp")
        provider = build_tracer_provider(config, default_redact)
        processors = provider._active_span_processor._span_processors
        assert [type(p) for p in processors] == [RedactingSpanProcessor]
        provider.shutdown()

    def test_sampler_from_config(self) -> None:
        config = ServingConfig(
            otel_traces_sampler="parentbased_traceidratio", otel_traces_sampler_arg=0.25
        )
        sampler = build_tracer_provider(config, default_redact).sampler
        assert isinstance(sampler, ParentBased)
        assert isinstance(sampler._root, TraceIdRatioBased)
        assert sampler._root.rate == 0.25

    def test_no_current_span_no_trace_id(self) -> None:
        assert current_trace_attributes() == {}


class TestRouteNames:
    """Server spans are named by route template, never by the raw path."""

    def test_names(self) -> None:
        scope: dict[str, Any] = {"type": "http", "method": "GET", "path": "/jobs/abc-123"}
        assert server_span_name(scope, "/jobs/{job_id}") == "GET /jobs/{job_id}"
        scope = {"type": "websocket", "path": "/jobs/abc-123"}
        assert server_span_name(scope, "/stream") == "WS /stream"
        scope = {"type": "http", "method": "BREW", "path": "/jobs/abc-123"}
        assert server_span_name(scope, "/jobs/{job_id}") == "_OTHER /jobs/{job_id}"
