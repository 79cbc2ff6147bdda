"""TrackingListener: turns invocations into ZenML runs, through the bounded background writer."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import structlog

from zenml_serving.tracking.capture import CapturedInvocation, CapturedStep

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from zenml_serving.capture import InvocationCapture
    from zenml_serving.deployment.model import ServedPipeline, ServedStep
    from zenml_serving.engine.observer import StepOutcome
    from zenml_serving.execution.invocation import Invocation, InvocationOutcome
    from zenml_serving.tracking.writer import TrackingWriter

__all__ = ["TrackingListener"]

_log = structlog.stdlib.get_logger(__name__)


class _StepCollector:
    """Engine observer for one invocation: times and value references, nothing heavier."""

    def __init__(self, captured: CapturedInvocation) -> None:
        self._captured = captured
        self._current: dict[str, CapturedStep] = {}

    def step_started(self, step: ServedStep, inputs: Mapping[str, Any]) -> None:
        decisions = self._captured.capture.step(step.name)
        record = CapturedStep(
            name=step.name,
            started_at=time.time(),
            inputs=inputs if decisions.recorded else {},
        )
        self._current[step.name] = record
        self._captured.steps.append(record)

    def step_finished(self, step: ServedStep, outcome: StepOutcome) -> None:
        record = self._current.pop(step.name, None)
        if record is None:
            return
        record.finished_at = time.time()
        record.status = outcome.status
        record.attempts = outcome.attempts
        if outcome.outputs is not None and self._captured.capture.step(step.name).recorded:
            record.outputs = outcome.outputs
        record.error = outcome.error
        if outcome.metadata:
            record.metadata = dict(outcome.metadata)


class TrackingListener:
    """For invocations whose policy records a run: collect, then hand to the writer."""

    def __init__(
        self,
        pipeline: ServedPipeline,
        writer: TrackingWriter,
        resolve: Callable[[Invocation], InvocationCapture],
    ) -> None:
        """`writer` receives CapturedInvocations (see `write_captured`)."""
        self._pipeline = pipeline
        self._writer = writer
        self._resolve = resolve
        self._open: dict[str, CapturedInvocation] = {}
        self._lock = threading.Lock()

    def invocation_started(self, invocation: Invocation) -> _StepCollector | None:
        """Start collecting if the policy records a run for this invocation."""
        capture = self._resolve(invocation)
        if not capture.record_run:
            return None
        captured = CapturedInvocation(
            invocation=invocation, capture=capture, pipeline=self._pipeline
        )
        with self._lock:
            self._open[invocation.id] = captured
        return _StepCollector(captured)

    def invocation_finished(self, invocation: Invocation, outcome: InvocationOutcome) -> None:
        """Queue the run record (built and written on the writer's thread)."""
        with self._lock:
            captured = self._open.pop(invocation.id, None)
        if captured is None:
            return
        captured.outcome = outcome
        captured.finished_at = time.time()
        for step in captured.steps:
            if step.finished_at is None:
                step.status = "cancelled"  # was running when the invocation stopped
                step.finished_at = captured.finished_at
        self._writer.submit(captured)
