"""The interface through which the engine reports what it does, and a fan-out helper.

Observers run on the engine's worker thread, around each step, so an observer may keep
thread-local state (an OpenTelemetry span made current for the step's own code, say) between
`step_started` and `step_finished`. An observer that raises is logged and ignored: observing
must never change the outcome of an invocation. An observer that also has
`step_chunk(step, seq, value, size) -> bool` receives what steps `emit()` (engine/chunks.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import structlog

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from zenml_serving.deployment.model import ServedStep

__all__ = ["CompositeObserver", "ExecutionObserver", "StepOutcome", "chunk_sink"]

_log = structlog.stdlib.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """How one step ended."""

    status: Literal["completed", "failed"]
    duration_s: float
    attempts: int
    outputs: Mapping[str, Any] | None = None
    error: BaseException | None = None
    metadata: Mapping[str, Any] | None = None
    """What the step logged with `log_metadata()` (recorded with its step run, if any)."""
    chunks: int = 0
    """Chunks the step emitted that were delivered to its job's stream."""
    chunks_dropped: int = 0
    """Chunks the step emitted that were dropped (the job's backlog was full)."""


class ExecutionObserver(Protocol):
    """Receives the engine's progress for one invocation."""

    def step_started(self, step: ServedStep, inputs: Mapping[str, Any]) -> None:
        """`step` is about to be called with `inputs`."""

    def step_finished(self, step: ServedStep, outcome: StepOutcome) -> None:
        """`step` returned or raised (after its retries)."""


class CompositeObserver:
    """Forwards every call to several observers, isolating their failures."""

    def __init__(self, observers: Sequence[ExecutionObserver]) -> None:
        self._observers = tuple(observers)
        sinks = [sink for o in observers if (sink := chunk_sink(o)) is not None]
        self.chunk_sink: Callable[[str, int, Any, int], bool] | None = sinks[0] if sinks else None
        """Where emitted chunks go: the one observer that streams them (a job's), if any."""

    def step_started(self, step: ServedStep, inputs: Mapping[str, Any]) -> None:
        """Forward to every observer."""
        for observer in self._observers:
            try:
                observer.step_started(step, inputs)
            except Exception:
                _log.exception("observer_failed", observer=repr(observer), hook="step_started")

    def step_finished(self, step: ServedStep, outcome: StepOutcome) -> None:
        """Forward to every observer, last registered first (so nesting unwinds in order)."""
        for observer in reversed(self._observers):
            try:
                observer.step_finished(step, outcome)
            except Exception:
                _log.exception("observer_failed", observer=repr(observer), hook="step_finished")


def chunk_sink(observer: ExecutionObserver) -> Callable[[str, int, Any, int], bool] | None:
    """The observer's receiver of emitted chunks, or None when nothing streams them."""
    if isinstance(observer, CompositeObserver):
        return observer.chunk_sink
    sink: Callable[[str, int, Any, int], bool] | None = getattr(observer, "step_chunk", None)
    return sink
