"""OpenTelemetry tracing: the provider (built per worker process), redaction, route names.

- `build_tracer_provider`: sampler, resource and exporter from ServingConfig's `OTEL_*` fields.
  No exporter configured -> spans are still made (their ids correlate logs and responses)
  but nothing leaves the process and no network call is made.
- `RedactingSpanProcessor` wraps the exporting processor: a span's attributes freeze at
  `end()`, so it hands the exporter a redacted *copy* (attributes, event and link attributes,
  status description) and the exporter never sees the original.
- `UNMATCHED_ROUTE`: the route label of a request no route matched (server spans and metric
  labels use the route template Litestar's router found, never the raw path: `telemetry/http.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import sampling as otel_sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Link, Status

from zenml_serving import __version__
from zenml_serving.config import ConfigError

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import Span

    from zenml_serving.config import ServingConfig
    from zenml_serving.telemetry.redaction import Redactor

__all__ = [
    "INSTRUMENTATION_NAME",
    "UNMATCHED_ROUTE",
    "RedactingSpanProcessor",
    "build_tracer_provider",
    "current_trace_attributes",
    "format_trace_id",
]

UNMATCHED_ROUTE = "unmatched"
"""The route label of a request no route handler matched (404): one value, not the path."""

INSTRUMENTATION_NAME = "zenml_serving"


def format_trace_id(trace_id: int) -> str:
    """A trace id as the 32 hex digits W3C and every tracing UI use."""
    return format(trace_id, "032x")


def current_trace_attributes() -> dict[str, Any]:
    """`{"trace_id": ...}` of the current span (empty if there is none), for Invocation.attributes.

    Called on the request path so that a job record carries its trace id from the start.
    """
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": format_trace_id(context.trace_id)}


class RedactingSpanProcessor(SpanProcessor):
    """Hands `delegate` (the exporting processor) a redacted copy of every ended span."""

    def __init__(self, delegate: SpanProcessor, redact: Redactor) -> None:
        self._delegate = delegate
        self._redact = redact

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Forwarded unchanged: nothing is exported at start."""
        self._delegate.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        """Forward a copy whose attributes went through the redactor."""
        self._delegate.on_end(self.redacted(span))

    def redacted(self, span: ReadableSpan) -> ReadableSpan:
        """`span` itself if redaction changes nothing, else a copy with every attribute, event,
        link and status description redacted (the original is frozen once ended)."""
        redact = self._redact
        attributes = self._attributes(span.attributes)
        events = [(e, self._attributes(e.attributes)) for e in span.events]
        links = [(link, self._attributes(link.attributes)) for link in span.links]
        status = span.status
        description = status.description and str(redact(status.description))
        if (
            attributes == _as_dict(span.attributes)
            and all(new == _as_dict(e.attributes) for e, new in events)
            and all(new == _as_dict(link.attributes) for link, new in links)
            and description == status.description
        ):
            return span
        return ReadableSpan(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=attributes,
            events=[Event(e.name, new, e.timestamp) for e, new in events],
            links=[Link(link.context, new) for link, new in links],
            kind=span.kind,
            status=Status(status.status_code, description) if description else status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )

    def _attributes(self, attributes: Any) -> dict[str, Any] | None:
        if not attributes:
            return None
        redacted = self._redact(dict(attributes))
        return dict(redacted) if isinstance(redacted, dict) else None

    def shutdown(self) -> None:
        """Shut the delegate down (flushes what it holds)."""
        self._delegate.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the delegate."""
        return self._delegate.force_flush(timeout_millis)


def _as_dict(attributes: Any) -> dict[str, Any] | None:
    return dict(attributes) if attributes else None


def _sampler(name: str, ratio: float) -> otel_sampling.Sampler:
    """The SDK sampler OTEL_TRACES_SAMPLER names (ServingConfig validated the name)."""
    root: otel_sampling.Sampler
    if name.endswith("always_off"):
        root = otel_sampling.ALWAYS_OFF
    elif name.endswith("traceidratio"):
        root = otel_sampling.TraceIdRatioBased(ratio)
    else:
        root = otel_sampling.ALWAYS_ON
    return otel_sampling.ParentBased(root) if name.startswith("parentbased_") else root


def build_tracer_provider(
    config: ServingConfig,
    redact: Redactor,
    *,
    exporter: SpanExporter | None = None,
) -> TracerProvider:
    """A provider for this worker process, exporting through the redacting processor.

    `exporter` overrides what the `OTEL_*` configuration says (tests pass an in-memory one);
    it goes through the same batching and redaction.
    """
    attributes: dict[str, Any] = {
        SERVICE_NAME: config.otel_service_name,
        SERVICE_VERSION: __version__,
    }
    provider = TracerProvider(
        sampler=_sampler(config.otel_traces_sampler, config.otel_traces_sampler_arg),
        resource=Resource.create(attributes),
    )
    if exporter is None:
        exporter = _configured_exporter(config)
    if exporter is not None:
        batches = BatchSpanProcessor(
            exporter,
            max_export_batch_size=config.otel_bsp_max_export_batch_size,
            schedule_delay_millis=config.otel_bsp_schedule_delay_ms,
        )
        provider.add_span_processor(RedactingSpanProcessor(batches, redact))
    return provider


def _configured_exporter(config: ServingConfig) -> SpanExporter | None:
    if config.otel_traces_exporter == "none":
        return None
    if config.otel_traces_exporter == "console":
        return ConsoleSpanExporter()
    if config.otel_exporter_otlp_protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
                OTLPSpanExporter as GrpcExporter,
            )
        except ImportError:
            raise ConfigError(
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                "grpc",
                "install opentelemetry-exporter-otlp-proto-grpc, or use http/protobuf",
            ) from None
        grpc_exporter: SpanExporter = GrpcExporter()
        return grpc_exporter
    # The exporter reads the endpoint (appending /v1/traces to OTEL_EXPORTER_OTLP_ENDPOINT),
    # headers, timeout, compression and certificates from the standard variables itself.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()
