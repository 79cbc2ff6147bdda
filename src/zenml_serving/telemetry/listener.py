"""The invocation span, a child span per step, step/invocation metrics and log events.

`TelemetryListener` is an `InvocationListener`: the execution manager calls it on the worker
thread that runs the invocation, so the invocation span (and then each step's span) is made
current there and the step's own code, logs and third-party spans nest under it.

Span tree of a sync request: `POST /invoke` (server) -> `invoke <pipeline>` -> `step <name>`...
An async or streamed job's invocation span is a child of the request that submitted it (one
trace id, the one in the job record and the response headers) and also carries a link to it
(`zenml.link.kind=submitted_by`), so a trace UI shows where a job came from even if the
request span was sampled or stored apart.

Cost on the request path is kept proportional to what is recorded: the capture decision is
asked for only when something needs it (a recording span, a DEBUG log, a failure), an
invocation whose request was not sampled makes no spans at all (its children would not be
sampled either), only metrics, and one sampled out at its own span makes no step spans.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from zenml_serving.capture import CaptureMode
from zenml_serving.capture.redaction import type_name
from zenml_serving.engine.engine import StepFailedError
from zenml_serving.telemetry import metrics
from zenml_serving.telemetry.capture import (
    LOG_EXCEPTION_MESSAGES,
    metadata_attributes,
    payload_attributes,
)
from zenml_serving.telemetry.tracing import format_trace_id

if TYPE_CHECKING:
    from collections.abc import Mapping
    from contextvars import Token

    from opentelemetry.trace import Span, Tracer

    from zenml_serving.capture import InvocationCapture, StepCapture
    from zenml_serving.deployment.model import ServedPipeline, ServedStep
    from zenml_serving.engine.observer import StepOutcome
    from zenml_serving.execution.invocation import Invocation, InvocationOutcome
    from zenml_serving.telemetry.capture import CaptureDecider

__all__ = ["TelemetryListener"]

_LOGGER = "zenml_serving.invocation"
_log = structlog.stdlib.get_logger(_LOGGER)
_level = logging.getLogger(_LOGGER)
"""Asked before building an event, so disabled levels cost nothing."""
_DECIDING = threading.Lock()
"""Taken only for the first capture decision of an invocation (a sampled decision is made
once, even when concurrent steps ask for it together)."""
_STATE = "_telemetry"
"""Key of this listener's per-invocation state in `Invocation.attributes`."""


class _InvocationTelemetry:
    """One invocation's span, log context and step observer.

    Independent steps may run at once, each on its own thread (engine/branches.py): step
    state is kept by step name, and each step's span is made current on the thread it runs on.
    """

    def __init__(self, listener: TelemetryListener, invocation: Invocation) -> None:
        self.listener = listener
        self.invocation = invocation
        self.span: Span | None = None
        self.token: object = None
        self.log_tokens: Mapping[str, Any] = {}
        self.messages_token: Token[bool] | None = None
        self.steps: dict[str, tuple[Span | None, object, Mapping[str, Any]]] = {}
        self._capture: InvocationCapture | None = None
        self.detailed = False
        """Whether steps are watched one by one (a recording span, or DEBUG step logs); set
        once the invocation span exists. Otherwise a step costs nothing here unless it fails:
        step metrics come from the outcome at the end."""

    @property
    def capture(self) -> InvocationCapture:
        """The capture decision, asked for once and only when something needs it."""
        if self._capture is None:
            with _DECIDING:  # steps of one invocation may fail at once on their threads
                if self._capture is None:
                    self._capture = self.listener.decide(self.invocation)
        return self._capture

    def step_capture(self, step: ServedStep) -> StepCapture:
        """The capture decision for `step`."""
        return self.capture.step(step.name)

    @property
    def tracing(self) -> bool:
        """Whether this invocation's steps make spans: only under an invocation span that
        records (a sampled-out one would have sampled-out children: no need to make them)."""
        return self.span is not None and self.span.is_recording()

    def step_started(self, step: ServedStep, inputs: Mapping[str, Any]) -> None:
        if not self.detailed:
            return
        tracer = self.listener.tracer
        if not self.tracing or tracer is None:
            self.steps[step.name] = (None, None, inputs)
            return
        span = tracer.start_span(
            f"step {step.name}", kind=SpanKind.INTERNAL, attributes={"zenml.step.name": step.name}
        )
        if span.is_recording() and (capture := self.step_capture(step)).recorded:
            span.set_attributes(metadata_attributes(capture, "input", inputs))
        token = otel_context.attach(trace.set_span_in_context(span))
        self.steps[step.name] = (span, token, inputs)

    def step_finished(self, step: ServedStep, outcome: StepOutcome) -> None:
        failed = outcome.status == "failed"
        if not self.detailed:
            if failed:
                # The manager logs the failure next, on this thread: same rule for its message.
                self._allow_messages(self.step_capture(step).error_detail)
            return
        span, token, inputs = self.steps.pop(step.name, (None, None, {}))
        recording = span is not None and span.is_recording()
        debug = _level.isEnabledFor(logging.DEBUG)
        with_message = False
        if failed:
            with_message = self.step_capture(step).error_detail
            # The manager logs the failure next, on this thread: same rule for its message.
            self._allow_messages(with_message)
        recorded = (recording or debug) and self.step_capture(step).recorded
        payload = self._payload(step, inputs, outcome, failed=failed) if recorded else {}
        try:
            if span is not None and recording:
                metadata = self._metadata(step, inputs, outcome, failed=failed) if recorded else {}
                _annotate_step(
                    span, outcome, {**metadata, **payload}, recorded=recorded, message=with_message
                )
            if debug:
                _log.debug(
                    "step_finished",
                    step=step.name,
                    status=outcome.status,
                    duration_ms=round(outcome.duration_s * 1000, 3),
                    attempts=outcome.attempts,
                    **({"payload": payload} if payload else {}),
                )
        finally:
            if token is not None:
                otel_context.detach(token)  # type: ignore[arg-type]
            if span is not None:
                span.end()

    def _payload(
        self, step: ServedStep, inputs: Mapping[str, Any], outcome: StepOutcome, *, failed: bool
    ) -> dict[str, Any]:
        capture = self.step_capture(step)
        payload = payload_attributes(capture, "input", inputs, failed=failed)
        if outcome.outputs is not None:
            payload.update(payload_attributes(capture, "output", outcome.outputs))
        return payload

    def _metadata(
        self, step: ServedStep, inputs: Mapping[str, Any], outcome: StepOutcome, *, failed: bool
    ) -> dict[str, Any]:
        """Failing inputs may be recorded differently (errors_only); outputs after success."""
        capture = self.step_capture(step)
        metadata = metadata_attributes(capture, "input", inputs, failed=failed) if failed else {}
        if outcome.outputs is not None:
            metadata.update(metadata_attributes(capture, "output", outcome.outputs))
        return metadata

    def _allow_messages(self, allowed: bool) -> None:
        # The token that close() resets comes from the invocation's thread (see _started): a
        # step run on a helper thread sets this in a copy of that thread's context, which the
        # engine copies back when the step fails, and a token is only valid in its own context.
        LOG_EXCEPTION_MESSAGES.set(allowed)

    def close(self) -> None:
        """Restore the thread's context; end the invocation span."""
        structlog.contextvars.reset_contextvars(**self.log_tokens)
        if self.messages_token is not None:
            LOG_EXCEPTION_MESSAGES.reset(self.messages_token)
        if self.span is not None:
            otel_context.detach(self.token)  # type: ignore[arg-type]
            self.span.end()


def _annotate_step(
    span: Span, outcome: StepOutcome, attributes: dict[str, Any], *, recorded: bool, message: bool
) -> None:
    span.set_attribute("zenml.step.status", outcome.status)
    if outcome.chunks or outcome.chunks_dropped:
        # How many, never what: chunks are delivered to stream clients, not recorded.
        span.set_attribute("zenml.step.chunks", outcome.chunks)
        span.set_attribute("zenml.step.chunks_dropped", outcome.chunks_dropped)
    if recorded:
        span.set_attribute("zenml.step.attempts", outcome.attempts)
        span.set_attributes(attributes)
    if outcome.status == "failed":
        _record_error(span, outcome.error, recorded=recorded, with_message=message)


def _record_error(
    span: Span, error: BaseException | None, *, recorded: bool, with_message: bool
) -> None:
    """Error status and an `exception` event; the message only where payload is allowed."""
    error_type = type_name(error) if error is not None else "Error"
    if error is not None and with_message:
        span.record_exception(error, {"exception.type": error_type})
        span.set_status(Status(StatusCode.ERROR, f"{error_type}: {error}"))
        return
    span.set_status(Status(StatusCode.ERROR, error_type if recorded else None))
    if recorded:
        span.add_event("exception", {"exception.type": error_type})


def _observe(invocation: Invocation, outcome: InvocationOutcome) -> None:
    """Invocation and step metrics, in one go at the end (steps are not watched one by one
    for metrics: that would cost every step of every invocation a call)."""
    metrics.child(metrics.INVOCATION_DURATION, invocation.mode).observe(outcome.duration_s)
    for record in outcome.steps:
        metrics.observe_step(record.name, record.status, record.duration_s, None)
    error = outcome.error
    if isinstance(error, StepFailedError):
        metrics.observe_step(error.step, "failed", error.duration_s, type(error.error).__name__)


class TelemetryListener:
    """Traces, measures and logs every invocation (see the module docstring)."""

    def __init__(
        self,
        pipeline: ServedPipeline,
        *,
        tracer: Tracer | None,
        decide: CaptureDecider,
        metrics: bool = True,
    ) -> None:
        self.pipeline = pipeline
        self.tracer = tracer
        """None with tracing off: metrics and log context only."""
        self.metrics = metrics
        """Whether to observe the Prometheus metrics (ZENML_SERVING_METRICS)."""
        self.decide = decide
        self._span_name = f"invoke {pipeline.name}"
        self._snapshot_id = str(pipeline.snapshot_id)

    def invocation_started(self, invocation: Invocation) -> _InvocationTelemetry | None:
        """Start the invocation span (current on this thread) and observe the steps."""
        try:
            return self._started(invocation)
        except Exception:  # telemetry must never change an invocation's outcome
            _log.exception("telemetry_failed", hook="invocation_started")
            return None

    def _started(self, invocation: Invocation) -> _InvocationTelemetry:
        state = _InvocationTelemetry(self, invocation)
        waited = max(0.0, time.time() - invocation.submitted_at)
        if self.metrics:
            metrics.child(metrics.QUEUE_WAIT, invocation.mode).observe(waited)
        parent = trace.get_current_span().get_span_context()
        # A request that was not sampled gets no child spans: they would not be sampled either.
        if self.tracer is not None and not (parent.is_valid and not parent.trace_flags.sampled):
            state.span = self._start_span(state, parent, waited)
            span_context = state.span.get_span_context()
            if span_context.is_valid:
                invocation.attributes.setdefault("trace_id", format_trace_id(span_context.trace_id))
            state.token = otel_context.attach(trace.set_span_in_context(state.span))
        ids = {"invocation_id": invocation.id}
        if invocation.mode != "sync":
            ids["job_id"] = invocation.id
        state.log_tokens = structlog.contextvars.bind_contextvars(**ids)
        state.messages_token = LOG_EXCEPTION_MESSAGES.set(LOG_EXCEPTION_MESSAGES.get())
        state.detailed = state.tracing or _level.isEnabledFor(logging.DEBUG)
        invocation.attributes[_STATE] = state
        return state

    def _start_span(self, state: _InvocationTelemetry, parent: Any, waited: float) -> Span:
        assert self.tracer is not None
        invocation = state.invocation
        attributes: dict[str, Any] = {
            "zenml.invocation.id": invocation.id,
            "zenml.invocation.mode": invocation.mode,
        }
        links = []
        if invocation.mode != "sync":
            attributes["zenml.job.id"] = invocation.id
            if parent.is_valid:
                links.append(Link(parent, {"zenml.link.kind": "submitted_by"}))
        span = self.tracer.start_span(
            self._span_name, kind=SpanKind.INTERNAL, attributes=attributes, links=links
        )
        if not span.is_recording():
            return span
        capture = state.capture
        if capture.mode is not CaptureMode.NONE:
            span.set_attributes(
                {
                    "zenml.pipeline.name": self.pipeline.name,
                    "zenml.snapshot.id": self._snapshot_id,
                    "zenml.invocation.queue_wait_ms": round(waited * 1000, 3),
                    "zenml.invocation.parameter_count": len(invocation.parameters),
                    **{f"zenml.{key}": value for key, value in capture.attributes().items()},
                }
            )
            parameters = capture.run_parameters(invocation.parameters)
            if parameters is not None:
                preview = capture.preview(parameters)
                span.set_attributes(preview.attributes("zenml.invocation.parameters"))
        return span

    def invocation_finished(self, invocation: Invocation, outcome: InvocationOutcome) -> None:
        """End the invocation span; record the duration; log the end of async work."""
        state = invocation.attributes.pop(_STATE, None)
        if not isinstance(state, _InvocationTelemetry):
            return
        try:
            self._finished(outcome, state)
        except Exception:
            _log.exception("telemetry_failed", hook="invocation_finished")
        finally:
            state.close()

    def _finished(self, outcome: InvocationOutcome, state: _InvocationTelemetry) -> None:
        invocation = state.invocation
        if self.metrics:
            _observe(invocation, outcome)
        span = state.span
        if span is not None and span.is_recording():
            span.set_attribute("zenml.invocation.status", outcome.status)
            recorded = state.capture.mode is not CaptureMode.NONE
            if outcome.failed_step is not None and recorded:
                span.set_attribute("zenml.invocation.failed_step", outcome.failed_step)
            if outcome.status != "completed":
                # The failing step's span carries the details the capture decision allows.
                span.set_status(Status(StatusCode.ERROR, outcome.status if recorded else None))
        level = logging.DEBUG if invocation.mode == "sync" else logging.INFO
        if _level.isEnabledFor(level):
            _log.log(
                level,
                "invocation_finished",
                mode=invocation.mode,
                status=outcome.status,
                duration_ms=round(outcome.duration_s * 1000, 3),
                failed_step=outcome.failed_step,
            )
