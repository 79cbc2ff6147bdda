"""Telemetry: the one owner of tracing, metrics and log configuration for a serving process.

`create_app` builds one per app, i.e. in each granian worker after it started (OpenTelemetry
providers and their export threads must not cross a fork), and wires what it offers:
`listener()` for the execution manager, `count_outcome` as the manager's outcome hook,
`install()` around the finished app (server span, request metrics, access log, trace headers),
`start()`/`stop()` in the lifespan.

Capture decides what spans and logs carry: the listener consults each invocation's
`InvocationCapture` (the one ZenML run tracking uses too); `decide` (constructor) replaces
where it comes from. `redact` replaces the redactor every sink (span processor, log events)
applies; by default it applies the capture package's detectors with ZENML_SERVING_CAPTURE_REDACT
and, once `declare_redact` is given the capture plan's names, every `redact` name the pipeline
and its steps declare (one process serves one pipeline, so its spans and logs get them all).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import structlog
from opentelemetry import trace

from zenml_serving import __version__
from zenml_serving.config import ConfigError
from zenml_serving.telemetry import http, metrics
from zenml_serving.telemetry.listener import TelemetryListener
from zenml_serving.telemetry.logging import configure_logging
from zenml_serving.telemetry.redaction import make_redactor
from zenml_serving.telemetry.tracing import INSTRUMENTATION_NAME, build_tracer_provider

if TYPE_CHECKING:
    from collections.abc import Sequence

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer

    from zenml_serving.capture import CapturePlan, InvocationCapture
    from zenml_serving.config import ServingConfig
    from zenml_serving.deployment.model import ServedPipeline
    from zenml_serving.execution.invocation import Invocation
    from zenml_serving.execution.manager import ServingExecutionManager
    from zenml_serving.telemetry.capture import CaptureDecider
    from zenml_serving.telemetry.redaction import Redactor
    from zenml_serving.tracking.writer import TrackingWriter

__all__ = ["Telemetry"]

_log = structlog.stdlib.get_logger(__name__)


class Telemetry:
    """Tracing, metrics and logging for one app; see the module docstring."""

    def __init__(
        self,
        config: ServingConfig,
        *,
        redact: Redactor | None = None,
        decide: CaptureDecider | None = None,
        span_exporter: SpanExporter | None = None,
        set_global_tracer_provider: bool = True,
    ) -> None:
        """`span_exporter` replaces the one the OTEL_* variables configure (tests)."""
        if config.metrics_enabled and config.prometheus_multiproc_dir is not None:
            if metrics.multiprocess_dir() is None:
                raise ConfigError(
                    "PROMETHEUS_MULTIPROC_DIR",
                    str(config.prometheus_multiproc_dir),
                    "must be set before the service starts (prometheus_client reads it at "
                    "import); start through `zenml-serving serve`",
                )
            if not config.prometheus_multiproc_dir.is_dir():
                raise ConfigError(
                    "PROMETHEUS_MULTIPROC_DIR",
                    str(config.prometheus_multiproc_dir),
                    "an existing folder (`zenml-serving serve` creates and empties it)",
                )
        self.config = config
        self.redact: Redactor = redact or make_redactor(config.capture_redact)
        self._custom_redact = redact is not None
        self._decide = decide
        self.tracer_provider: TracerProvider | None = None
        self._has_exporter = span_exporter is not None or config.otel_traces_exporter != "none"
        if self.tracing_enabled:
            # Through `_redact_now`, so that names declared later (`declare_redact`) apply.
            self.tracer_provider = build_tracer_provider(
                config, self._redact_now, exporter=span_exporter
            )
            if set_global_tracer_provider and isinstance(
                trace.get_tracer_provider(), trace.ProxyTracerProvider
            ):
                # Third-party instrumentation in this worker exports through the same
                # redacting processor.
                trace.set_tracer_provider(self.tracer_provider)
        self._sampler: asyncio.Task[None] | None = None
        self._manager: ServingExecutionManager | None = None
        self._tracking: TrackingWriter | None = None

    def _redact_now(self, value: Any) -> Any:
        return self.redact(value)

    def declare_redact(self, names: Sequence[str]) -> None:
        """Redact `names` too (the capture plan's declared `redact` names) in every span
        attribute and log event from now on. A redactor passed to the constructor is kept."""
        extra = [name for name in names if name not in self.config.capture_redact]
        if self._custom_redact or not extra:
            return
        self.redact = make_redactor((*self.config.capture_redact, *extra))
        self.configure_logging()

    @property
    def tracing_enabled(self) -> bool:
        """Spans are made only when they go somewhere: an exporter is configured (an OTLP
        endpoint, or OTEL_TRACES_EXPORTER=console) and OTEL_SDK_DISABLED is not set. Without
        one, tracing costs nothing (no middleware, no spans, no trace ids)."""
        return self._has_exporter and not self.config.otel_sdk_disabled

    def _tracer(self) -> Tracer | None:
        """The service's tracer (server, invocation and step spans); None with tracing off."""
        if self.tracer_provider is None:
            return None
        return self.tracer_provider.get_tracer(INSTRUMENTATION_NAME, __version__)

    def configure_logging(self) -> None:
        """structlog JSON/console with trace ids and the shared redactor."""
        fmt = self.config.log_format
        configure_logging(
            self.config.log_level,
            json=None if fmt == "auto" else fmt == "json",
            redact=self._redact_now,
        )

    def listener(self, pipeline: ServedPipeline, plan: CapturePlan) -> TelemetryListener:
        """The invocation listener for `pipeline`.

        Capture decisions come from `invocation.capture` (resolved on the request path) or,
        for an invocation made without it, from `plan`; `decide` (constructor) replaces both.
        Made with tracing and metrics off too: it binds the invocation id to log events and
        tells the log processor whether a failing step's exception message (which often
        quotes its inputs) may be logged, a few microseconds per invocation.
        """
        tracer = self._tracer()
        if self.config.metrics_enabled:
            metrics.BUILD_INFO.labels(
                version=__version__, pipeline=pipeline.name, snapshot_id=str(pipeline.snapshot_id)
            ).set(1)

        def from_plan(invocation: Invocation) -> InvocationCapture:
            if invocation.capture is not None:
                return invocation.capture
            return plan.resolve(invocation.id, invocation.capture_override)

        return TelemetryListener(
            pipeline,
            tracer=tracer,
            decide=self._decide or from_plan,
            metrics=self.config.metrics_enabled,
        )

    def count_outcome(self, invocation: Invocation, outcome: str) -> None:
        """The execution manager's outcome hook (client-visible outcomes, admission refusals)."""
        if self.config.metrics_enabled:
            metrics.count_outcome(invocation.mode, outcome)

    def install(self, app: Any) -> None:
        """Wrap the finished app: server span, request metrics, access log, trace headers.

        With all three off, nothing is wrapped: the layer would cost every request for nothing.
        """
        if not (self.config.metrics_enabled or self.config.access_log or self.tracer_provider):
            return
        http.install(
            app,
            metrics_enabled=self.config.metrics_enabled,
            access_log=self.config.access_log,
            tracer=self._tracer(),
        )

    def count_tracking_drops(self, reason: str, count: int) -> None:
        """The tracking writer's drop hook."""
        if self.config.metrics_enabled:
            metrics.count_tracking_drops(reason, count)

    async def start(
        self, manager: ServingExecutionManager, tracking: TrackingWriter | None = None
    ) -> None:
        """Sample the state gauges now and every ZENML_SERVING_METRICS_INTERVAL seconds."""
        if not self.config.metrics_enabled:
            return
        self._manager = manager
        self._tracking = tracking
        await self.sample()
        self._sampler = asyncio.create_task(self._sample_forever(), name="zenml-serving-metrics")

    async def sample(self) -> None:
        """Set the state gauges from the execution manager (also done before each scrape)."""
        if self._manager is not None:
            await metrics.sample_state(self._manager, self._tracking)

    async def _sample_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.metrics_interval_s)
            try:
                await self.sample()
            except Exception:
                _log.exception("metrics_sampling_failed")

    async def stop(self) -> None:
        """Stop sampling, flush spans, and (several workers) mark this worker dead."""
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            await self.sample()
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        if self.config.metrics_enabled:
            metrics.mark_process_dead()

    def force_flush(self) -> None:
        """Export every ended span now (tests, and before a worker exits)."""
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush()
