"""What one invocation leaves in ZenML, already decided by the capture policy.

A RunRecord carries only what may be stored: metadata values are redacted and truncated
before a record is built, artifacts are present only where the policy persists them. The
recorder writes exactly what it is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping
    from uuid import UUID

__all__ = ["ArtifactToSave", "ExceptionRecord", "RunRecord", "StepRunRecord", "run_name_of"]

RunStatus = Literal["completed", "failed", "cancelled", "timed_out"]


@dataclass(frozen=True)
class ArtifactToSave:
    """A step value to persist in the artifact store, with the materializers ZenML chose."""

    value: Any
    materializers: tuple[Any, ...] = ()
    """Materializer sources from the snapshot (empty: ZenML's default for the type)."""


@dataclass(frozen=True)
class ExceptionRecord:
    """A step's error as the policy allows it to be stored."""

    type: str
    message: str | None = None
    traceback: str | None = None


@dataclass(frozen=True)
class StepRunRecord:
    """One step that ran (or was running when the invocation stopped)."""

    name: str
    status: Literal["completed", "failed", "cancelled"]
    started_at: dt.datetime
    finished_at: dt.datetime
    metadata: Mapping[str, Any] = field(default_factory=dict)
    artifacts: Mapping[str, ArtifactToSave] = field(default_factory=dict)
    """Outputs to persist."""
    input_artifacts: Mapping[str, ArtifactToSave] = field(default_factory=dict)
    """Inputs to persist (a failing step under `errors_only`), linked as the step's inputs."""
    exception: ExceptionRecord | None = None
    upstream_outputs: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    """argument -> (upstream step, output): linked as inputs where those were persisted."""


@dataclass(frozen=True)
class RunRecord:
    """One invocation as a ZenML pipeline run."""

    invocation_id: str
    snapshot_id: UUID
    project_id: UUID
    pipeline_name: str
    status: RunStatus
    started_at: dt.datetime
    finished_at: dt.datetime
    metadata: Mapping[str, Any] = field(default_factory=dict)
    steps: tuple[StepRunRecord, ...] = ()
    status_reason: str | None = None
    run_name: str = ""
    """The ZenML run's name (`run_name_of`)."""


def run_name_of(pipeline_name: str, invocation_id: str, chosen: str | None = None) -> str:
    """The name of the ZenML run an invocation is recorded as: the caller's `run_name`, or
    `<pipeline>-serving-<invocation id>`."""
    return chosen or f"{pipeline_name}-serving-{invocation_id}"
