"""What the execution manager knows about one invocation, and the listener interface.

A listener (capture-aware tracking, telemetry) is told on the worker thread when an
invocation starts (and may return an engine observer for its steps) and when it ends.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from zenml_serving.telemetry.tracing import current_trace_attributes

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from zenml_serving.capture import CapturePlan, InvocationCapture
    from zenml_serving.engine.engine import InvocationResult, StepRecord
    from zenml_serving.engine.observer import ExecutionObserver

__all__ = [
    "Invocation",
    "InvocationListener",
    "InvocationOutcome",
    "invocation_from_request",
    "new_invocation_id",
]

Mode = Literal["sync", "async", "stream"]


_random = bytearray()
_random_lock = threading.Lock()


def new_invocation_id() -> str:
    """An unguessable id: a random (version 4) UUID from the OS's CSPRNG, as text.

    Random bytes are read 4 KiB at a time (one syscall per 256 ids instead of one per id).
    """
    with _random_lock:
        if len(_random) < 16:
            _random.extend(os.urandom(4096))
        raw = bytes(_random[:16])
        del _random[:16]
    return str(uuid.UUID(bytes=raw, version=4))


@dataclass(frozen=True)
class Invocation:
    """One request to run the pipeline."""

    id: str
    parameters: Mapping[str, Any]
    """Validated pipeline parameters by name."""
    mode: Mode = "sync"
    capture_override: Mapping[str, Any] | None = None
    submitted_at: float = field(default_factory=time.time)
    """Wall-clock time, for records (`created_at`)."""
    received: float = field(default_factory=time.monotonic)
    """`time.monotonic()` at arrival: the request timeout counts from it (one clock for
    every "seconds left", which a wall-clock step cannot move)."""
    capture: InvocationCapture | None = None
    """What this invocation may record, resolved once on the request path for every sink."""
    attributes: dict[str, Any] = field(default_factory=dict)
    """Listener-owned extras (e.g. the trace id), filled on the request path."""
    run_name: str | None = None
    """The name its ZenML run is recorded under, if the caller chose one (ZenML's
    `run_name`); else `<pipeline>-serving-<id>`."""


@dataclass(frozen=True)
class InvocationOutcome:
    """How an invocation ended, as listeners and the job record see it."""

    status: Literal["completed", "failed", "cancelled", "timed_out"]
    duration_s: float
    result: InvocationResult | None = None
    error: BaseException | None = None
    failed_step: str | None = None
    steps: Sequence[StepRecord] = ()
    """The steps that completed, in order (the failed one is `error`, a StepFailedError)."""


class InvocationListener(Protocol):
    """Told about every invocation, on the worker thread that runs it."""

    def invocation_started(self, invocation: Invocation) -> ExecutionObserver | None:
        """The invocation got a slot and is about to run; optionally observe its steps."""

    def invocation_finished(self, invocation: Invocation, outcome: InvocationOutcome) -> None:
        """The invocation ended (also after a timeout or cancellation)."""


def invocation_from_request(
    request: Any, *, mode: Mode, capture_plan: CapturePlan | None = None
) -> Invocation:
    """An Invocation from a validated invoke request (the per-pipeline pydantic model)."""
    parameters = request.parameters
    override = request.capture_override
    override_values = None if override is None else override.model_dump(exclude_none=True)
    invocation_id = new_invocation_id()
    return Invocation(
        id=invocation_id,
        parameters={name: getattr(parameters, name) for name in type(parameters).model_fields},
        mode=mode,
        capture_override=override_values,
        capture=None
        if capture_plan is None
        else capture_plan.resolve(invocation_id, override_values),
        # The request's trace id, so that a job record carries it from the start.
        attributes=current_trace_attributes(),
        run_name=getattr(request, "run_name", None),
    )
