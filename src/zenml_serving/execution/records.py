"""Job records and job events: the data the registry keeps and the streams carry.

Both are msgspec Structs so that the memory backend keeps them as they are and the Redis
backend stores them as JSON without a second schema. `apply_event` is the one place that says
how an event changes a job record.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = [
    "FINAL_EVENTS",
    "FINAL_STATUSES",
    "JobError",
    "JobEvent",
    "JobRecord",
    "JobStatus",
    "StepProgress",
    "apply_event",
]

JobStatus = Literal["queued", "running", "completed", "failed", "cancelled", "timed_out"]
FINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled", "timed_out"})
FINAL_EVENTS: frozenset[str] = frozenset(
    {"job.completed", "job.failed", "job.cancelled", "job.timed_out"}
)


class JobError(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Why an invocation did not complete."""

    type: str
    message: str
    step: str | None = None


class StepProgress(msgspec.Struct, kw_only=True):
    """One step of a job as far as it got (`cancelled`: it was running when the job stopped;
    its result, if it ever returns, is discarded)."""

    name: str
    status: Literal["pending", "running", "completed", "failed", "cancelled"] = "pending"
    duration_ms: float | None = None
    attempts: int | None = None


class JobRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The state of one async invocation, as `GET /jobs/{id}` shows it."""

    job_id: str
    status: JobStatus = "queued"
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    steps: list[StepProgress] = msgspec.field(default_factory=list)
    outputs: dict[str, Any] | None = None
    error: JobError | None = None
    trace_id: str | None = None
    owner: str = ""
    """Which serving process runs the job (cancellation is routed there)."""

    @property
    def finished(self) -> bool:
        """Whether the job reached a final status."""
        return self.status in FINAL_STATUSES


CHUNK_EVENT = "step.chunk"
"""The type of the events that carry what a step `emit()`s; they leave the job record as is."""


class JobEvent(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One thing that happened to a job; `id` orders a job's events from 1."""

    type: str
    job_id: str
    at: float
    id: int = 0
    step: str | None = None
    duration_ms: float | None = None
    attempts: int | None = None
    outputs: dict[str, Any] | None = None
    error: JobError | None = None
    seq: int | None = None
    """`step.chunk`: the chunk's number in its step, from 1 (a gap: chunks were dropped)."""
    chunk: Any = None
    """`step.chunk`: what the step emitted (JSON builtins)."""

    @property
    def final(self) -> bool:
        """Whether this is the job's last event."""
        return self.type in FINAL_EVENTS


_FINAL_STATUS_OF: dict[str, JobStatus] = {
    "job.completed": "completed",
    "job.failed": "failed",
    "job.cancelled": "cancelled",
    "job.timed_out": "timed_out",
}


def apply_event(record: JobRecord, event: JobEvent) -> JobRecord:
    """Return `record` updated by `event` (a final record is never changed again)."""
    if record.finished:
        return record
    changes: dict[str, Any] = {}
    if event.type == "job.started":
        changes["status"] = "running"
        changes["started_at"] = event.at
    elif event.type in ("step.started", "step.completed", "step.failed") and event.step:
        status = {"step.started": "running", "step.completed": "completed"}.get(
            event.type, "failed"
        )
        steps = list(record.steps)
        index = next((i for i, s in enumerate(steps) if s.name == event.step), None)
        progress = StepProgress(
            name=event.step,
            status=status,  # type: ignore[arg-type]
            duration_ms=event.duration_ms,
            attempts=event.attempts,
        )
        if index is None:
            steps.append(progress)
        else:
            steps[index] = progress
        changes["steps"] = steps
    elif event.type in _FINAL_STATUS_OF:
        changes["status"] = _FINAL_STATUS_OF[event.type]
        changes["steps"] = [
            msgspec.structs.replace(s, status="cancelled") if s.status == "running" else s
            for s in record.steps
        ]
        changes["finished_at"] = event.at
        changes["outputs"] = event.outputs
        changes["error"] = event.error
    return msgspec.structs.replace(record, **changes) if changes else record
