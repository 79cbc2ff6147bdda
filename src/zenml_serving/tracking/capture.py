"""What the tracking listener keeps of one invocation on the request path: references only.

On the worker thread we note timings and keep references to the step inputs and outputs the
policy may record; turning them into redacted previews, sizes and artifacts happens on the
tracking writer's thread (`builder.py`), so tracking adds next to nothing to a request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from zenml_serving.capture import InvocationCapture
    from zenml_serving.deployment.model import ServedPipeline
    from zenml_serving.execution.invocation import Invocation, InvocationOutcome

__all__ = ["CapturedInvocation", "CapturedStep"]


@dataclass
class CapturedStep:
    """One step as it ran: times, attempts, and the values the policy may need."""

    name: str
    started_at: float
    finished_at: float | None = None
    status: str = "running"
    attempts: int = 1
    inputs: Mapping[str, Any] = field(default_factory=dict)
    outputs: Mapping[str, Any] = field(default_factory=dict)
    error: BaseException | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """What the step logged with `log_metadata()`."""


@dataclass
class CapturedInvocation:
    """Everything needed to build the run record later, off the request path."""

    invocation: Invocation
    capture: InvocationCapture
    pipeline: ServedPipeline
    started_at: float = field(default_factory=time.time)
    steps: list[CapturedStep] = field(default_factory=list)
    outcome: InvocationOutcome | None = None
    finished_at: float | None = None
