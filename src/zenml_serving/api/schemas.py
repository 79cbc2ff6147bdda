"""Request and response shapes of the HTTP API (documented in the README; keep them stable).

Responses are msgspec Structs. The invoke request is a pydantic model built per pipeline at
startup (`build_invoke_request_model`), so that OpenAPI shows the pipeline's real parameters
and validation errors name the exact field.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec
import pydantic

from zenml_serving.config import CAPTURE_MODES
from zenml_serving.deployment.parameters import exact_json_type
from zenml_serving.execution.records import JobError, JobRecord, JobStatus, StepProgress

__all__ = [
    "CaptureOverride",
    "FieldError",
    "Health",
    "InvokeResponse",
    "JobAccepted",
    "JobList",
    "JobSummary",
    "JobView",
    "Problem",
    "StepSummary",
    "ZenMLInvokeMetadata",
    "ZenMLInvokeResponse",
    "ZenMLSubmitResponse",
    "build_invoke_request_model",
    "build_zenml_invoke_request_model",
    "iso",
]

CaptureMode = Literal["full", "sampled", "errors_only", "metadata", "none"]
assert set(CaptureMode.__args__) == set(CAPTURE_MODES)  # type: ignore[attr-defined]


class CaptureOverride(pydantic.BaseModel):
    """A request's capture override (subject to ZENML_SERVING_CAPTURE_OVERRIDE)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    mode: CaptureMode | None = None
    # A JSON number only (lax pydantic would take `false` or "0.5").
    # (the bounds are repeated for Litestar, which leaves out those of an optional number)
    sample_rate: Annotated[float, exact_json_type(float), pydantic.Field(ge=0.0, le=1.0)] | None = (
        pydantic.Field(default=None, json_schema_extra={"minimum": 0.0, "maximum": 1.0})
    )


def _parameters_field(parameters_model: type[pydantic.BaseModel]) -> tuple[dict[str, Any], Any]:
    """The field options that close an object in the document, and the `parameters` field:
    required when a parameter is, else defaulting to the model's defaults."""
    # Litestar renders a pydantic model's `extra="forbid"` as nothing: say it in the document
    # (on a field typed by the model, `schema_extra` lands on the model's component schema).
    closed: dict[str, Any] = {"json_schema_extra": {"additionalProperties": False}}
    required = any(f.is_required() for f in parameters_model.model_fields.values())
    field: Any = (
        pydantic.Field(..., **closed)
        if required
        else pydantic.Field(default_factory=parameters_model, **closed)
    )
    return closed, field


def build_invoke_request_model(
    parameters_model: type[pydantic.BaseModel],
) -> type[pydantic.BaseModel]:
    """The `POST /invoke` body for one pipeline: its parameters and an optional override."""
    closed, parameters_field = _parameters_field(parameters_model)
    model: type[pydantic.BaseModel] = pydantic.create_model(
        "InvokeRequest",
        __config__=pydantic.ConfigDict(extra="forbid"),
        parameters=(parameters_model, parameters_field),
        # An object or left out (not `null`): `| None` would hide the component schema.
        capture_override=(CaptureOverride, pydantic.Field(default=None, **closed)),
    )
    return model


def build_zenml_invoke_request_model(
    parameters_model: type[pydantic.BaseModel],
) -> type[pydantic.BaseModel]:
    """The body ZenML's client and server use (`ZENML_SERVING_API=zenml`): `parameters`
    validated by `parameters_model` (the lax one), `run_name`, `skip_artifact_materialization`,
    and our optional `capture_override`. Unknown top-level fields are refused (ZenML's server
    ignores them: here a typo must not drop a field silently)."""
    closed, parameters_field = _parameters_field(parameters_model)
    model: type[pydantic.BaseModel] = pydantic.create_model(
        "ZenMLInvokeRequest",
        __config__=pydantic.ConfigDict(extra="forbid"),
        parameters=(parameters_model, parameters_field),
        # The body's own fields keep exact JSON types (only parameters are converted).
        run_name=(
            Annotated[str, exact_json_type(str)] | None,
            pydantic.Field(
                default=None,
                max_length=255,
                description="Name of the ZenML run this invocation is recorded as (when the "
                "capture policy records one)",
            ),
        ),
        skip_artifact_materialization=(
            Annotated[bool, exact_json_type(bool)],
            pydantic.Field(
                default=False,
                description="Accepted for ZenML's client; outputs are always answered from "
                "memory here (artifacts are written only by run tracking, after the answer)",
            ),
        ),
        capture_override=(CaptureOverride, pydantic.Field(default=None, **closed)),
    )
    return model


def iso(timestamp: float | None) -> str | None:
    """An epoch timestamp as ISO 8601 UTC, or None."""
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, tz=dt.timezone.utc).isoformat()


class StepSummary(msgspec.Struct, kw_only=True):
    """One step of a completed sync invocation."""

    name: str
    status: str
    duration_ms: float
    attempts: int


class InvokeResponse(msgspec.Struct, kw_only=True):
    """`POST /invoke` (sync) on success."""

    invocation_id: str
    status: Literal["completed"]
    pipeline: str
    snapshot_id: str
    outputs: dict[str, Any]
    duration_ms: float
    steps: list[StepSummary]
    trace_id: str | None = None
    success: Literal[True] = True
    """ZenML's field: always true here (failures are problems)."""
    execution_time: float = 0.0
    """ZenML's field: `duration_ms` in seconds."""


class ZenMLInvokeMetadata(msgspec.Struct, kw_only=True):
    """`metadata` of ZenML's invoke answer (`deployers/server/models.py`)."""

    deployment_id: str | None
    deployment_name: str | None
    snapshot_id: str
    snapshot_name: str | None
    pipeline_name: str
    run_id: str | None
    """Always null: the ZenML run (if the capture policy records one) is written after the
    answer, by the tracking writer; find it by `run_name`."""
    run_index: int | None
    run_name: str | None
    """The ZenML run this invocation is recorded as, or null when none is recorded."""
    parameters_used: dict[str, Any]


class ZenMLInvokeResponse(msgspec.Struct, kw_only=True):
    """`POST /invoke` with `ZENML_SERVING_API=zenml`: ZenML's answer, 200 even when a step
    failed (`success: false`, `error`)."""

    success: bool
    outputs: dict[str, Any] | None
    execution_time: float
    """Seconds."""
    metadata: ZenMLInvokeMetadata
    error: str | None
    invocation_id: str
    """zenml-serving's id of the invocation (also the `X-Invocation-Id` header)."""


class ZenMLSubmitResponse(msgspec.Struct, kw_only=True):
    """`POST /submit` (`ZENML_SERVING_API=zenml`): the job was queued; `run_id` is its job id
    (`GET /jobs/{run_id}`)."""

    run_id: str


class JobAccepted(msgspec.Struct, kw_only=True):
    """`POST /invoke?mode=async`: the job was queued."""

    job_id: str
    status: JobStatus
    location: str
    stream: str


class JobView(msgspec.Struct, kw_only=True, omit_defaults=True):
    """`GET /jobs/{id}`."""

    job_id: str
    status: JobStatus
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    duration_ms: float | None = None
    steps: list[StepProgress] = msgspec.field(default_factory=list)
    outputs: dict[str, Any] | None = None
    error: JobError | None = None
    trace_id: str | None = None

    @classmethod
    def of(cls, record: JobRecord) -> JobView:
        """The API view of a stored record."""
        duration = None
        if record.started_at is not None and record.finished_at is not None:
            duration = (record.finished_at - record.started_at) * 1000
        return cls(
            job_id=record.job_id,
            status=record.status,
            created_at=iso(record.created_at) or "",
            started_at=iso(record.started_at),
            finished_at=iso(record.finished_at),
            duration_ms=duration,
            steps=record.steps,
            outputs=record.outputs,
            error=record.error,
            trace_id=record.trace_id,
        )


class JobSummary(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A job in `GET /jobs`: everything but the outputs (they come from `GET /jobs/{id}`, so a
    page of large results is never read and sent whole)."""

    job_id: str
    status: JobStatus
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    duration_ms: float | None = None
    steps: list[StepProgress] = msgspec.field(default_factory=list)
    error: JobError | None = None
    trace_id: str | None = None

    @classmethod
    def of(cls, record: JobRecord) -> JobSummary:
        """The list view of a stored record."""
        view = JobView.of(record)
        return cls(
            job_id=view.job_id,
            status=view.status,
            created_at=view.created_at,
            started_at=view.started_at,
            finished_at=view.finished_at,
            duration_ms=view.duration_ms,
            steps=view.steps,
            error=view.error,
            trace_id=view.trace_id,
        )


class JobList(msgspec.Struct, kw_only=True):
    """`GET /jobs`: a page of jobs, newest first, without outputs."""

    jobs: list[JobSummary]
    total: int
    limit: int
    offset: int


class HealthCheck(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One check behind `/health` or `/livez` and the figures it judged."""

    ok: bool
    lag_s: float | None = None
    max_lag_s: float | None = None
    in_flight: int | None = None
    capacity: int | None = None
    abandoned_still_running: int | None = None


class Health(msgspec.Struct, kw_only=True, omit_defaults=True):
    """`GET /health`: the same body with 200 (ready) and 503 (starting, draining, wedged).
    `pipeline` and `snapshot_id` only when no auth key is set (the route is open)."""

    status: Literal["ok", "unavailable"]
    deployment_loaded: bool
    accepting: bool
    checks: dict[str, HealthCheck]
    uptime_s: float
    pipeline: str | None = None
    snapshot_id: str | None = None


class Liveness(msgspec.Struct, kw_only=True):
    """`GET /livez`: 200 (alive) or 503 (wedged), with the checks."""

    status: Literal["ok", "wedged"]
    checks: dict[str, HealthCheck]


class FieldError(msgspec.Struct, kw_only=True):
    """One invalid field of a request (`parameters.message`, `limit`, `body`)."""

    field: str
    message: str


class Problem(msgspec.Struct, kw_only=True):
    """An RFC 9457 problem (`application/problem+json`): every error the service answers.

    Only documents the shape (see `api.errors` for how problems are made): the fields after
    `detail` appear where they apply, and clients must ignore fields they do not know.
    """

    type: str
    """`urn:zenml-serving:problem:<kind>`, e.g. `...:validation`, `...:overloaded`."""
    title: str
    status: int
    detail: str
    """What happened and what to do about it."""
    errors: list[FieldError] | None = None
    """422: each invalid field."""
    invocation_id: str | None = None
    """The invocation the problem belongs to (also the `X-Invocation-Id` header)."""
    step: str | None = None
    """500 step-failed: the step that raised; 499/504: the step that did not start."""
    error_type: str | None = None
    """500 step-failed: the exception class the step raised."""
    attempts: int | None = None
    """500 step-failed: how many times the step ran (retries included)."""
    job_id: str | None = None
    """404: the unknown job."""
    retry_after_s: int | None = None
    """429: seconds to wait before retrying (also the `Retry-After` header)."""
