"""Build a RunRecord from a CapturedInvocation, deciding every field by the capture policy.

Runs on the tracking writer's thread. Every payload passes `capture.preview` (redaction and
truncation, the one path payloads take to any sink) and error texts pass `mask_secrets`.
"""

from __future__ import annotations

import datetime as dt
import traceback
from typing import TYPE_CHECKING, Any

from zenml_serving.capture import REDACTED, describe_value, is_sensitive_field, mask_secrets
from zenml_serving.deployment.model import FromStepOutput
from zenml_serving.tracking.records import (
    ArtifactToSave,
    ExceptionRecord,
    RunRecord,
    StepRunRecord,
    run_name_of,
)

if TYPE_CHECKING:
    from zenml_serving.capture import StepCapture
    from zenml_serving.tracking.capture import CapturedInvocation, CapturedStep

__all__ = ["build_run_record"]

_RUN_STATUS = {"completed", "failed", "cancelled", "timed_out"}


def _utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.timezone.utc)


def build_run_record(captured: CapturedInvocation) -> RunRecord:
    """The run record this invocation may leave, per its resolved capture decisions."""
    outcome = captured.outcome
    assert outcome is not None, "build only finished invocations"
    capture = captured.capture
    pipeline = captured.pipeline
    assert pipeline.project_id is not None
    failed = outcome.status == "failed"
    invocation = captured.invocation

    metadata: dict[str, Any] = {
        "invocation_id": invocation.id,
        "mode": invocation.mode,
        "status": outcome.status,
        "duration_ms": round(outcome.duration_s * 1000, 3),
        **capture.attributes(),
    }
    if invocation.mode != "sync":
        metadata["job_id"] = invocation.id
    trace_id = invocation.attributes.get("trace_id")
    if trace_id:
        metadata["trace_id"] = trace_id
    if capture.run_payloads(failed=failed):
        metadata["parameters"] = capture.preview(dict(invocation.parameters)).as_metadata()
        if outcome.result is not None:
            metadata["outputs"] = capture.preview(outcome.result.outputs).as_metadata()
    if failed and outcome.failed_step:
        metadata["failed_step"] = outcome.failed_step

    steps = tuple(_step_record(captured, step) for step in captured.steps)
    status_reason = None
    if outcome.status in ("cancelled", "timed_out") and outcome.error is not None:
        status_reason = str(outcome.error)
    finished = captured.finished_at or captured.started_at + outcome.duration_s
    return RunRecord(
        invocation_id=invocation.id,
        snapshot_id=pipeline.snapshot_id,
        project_id=pipeline.project_id,
        pipeline_name=pipeline.name,
        status=outcome.status,
        started_at=_utc(captured.started_at),
        finished_at=_utc(finished),
        metadata=metadata,
        steps=steps,
        status_reason=status_reason,
        run_name=run_name_of(pipeline.name, invocation.id, invocation.run_name),
    )


def _step_record(captured: CapturedInvocation, step: CapturedStep) -> StepRunRecord:
    decisions = captured.capture.step(step.name)
    failed = step.status == "failed"
    status = step.status if step.status in ("completed", "failed") else "cancelled"
    finished = step.finished_at if step.finished_at is not None else step.started_at
    if not decisions.recorded:
        # A bare step run: ZenML derives the run's status from its step runs.
        return StepRunRecord(
            name=step.name,
            status=status,  # type: ignore[arg-type]
            started_at=_utc(step.started_at),
            finished_at=_utc(finished),
        )
    metadata: dict[str, Any] = {
        "duration_ms": round((finished - step.started_at) * 1000, 3),
        "attempts": step.attempts,
    }
    inputs: dict[str, Any] = {}
    for name, value in step.inputs.items():
        decision = decisions.input(name, failed=failed)
        if decision.preview:
            inputs[name] = _preview(decisions, name, value)
        elif decision.metadata:
            inputs[name] = describe_value(value)
    if inputs:
        metadata["inputs"] = inputs
    outputs: dict[str, Any] = {}
    artifacts: dict[str, ArtifactToSave] = {}
    served = captured.pipeline.step(step.name)
    for name, value in step.outputs.items():
        decision = decisions.output(name)
        if decision.preview:
            outputs[name] = _preview(decisions, name, value)
        elif decision.metadata:
            outputs[name] = describe_value(value)
        if decision.persist:
            artifacts[name] = ArtifactToSave(value, served.output_materializers.get(name, ()))
    if outputs:
        metadata["outputs"] = outputs
    upstream = {
        arg: (binding.step, binding.output)
        for arg, binding in served.inputs.items()
        if isinstance(binding, FromStepOutput)
    }
    return StepRunRecord(
        name=step.name,
        status=status,  # type: ignore[arg-type]
        started_at=_utc(step.started_at),
        finished_at=_utc(finished),
        metadata=metadata,
        artifacts=artifacts,
        exception=_exception(step.error, decisions) if failed else None,
        upstream_outputs=upstream,
    )


def _preview(decisions: StepCapture, name: str, value: Any) -> dict[str, Any]:
    """A value's preview; a value whose own name is sensitive (`api_key`) is redacted whole."""
    if is_sensitive_field(name, decisions.redact):
        return decisions.preview(REDACTED).as_metadata() | {"type": "redacted"}
    return decisions.preview(value).as_metadata()


def _exception(error: BaseException | None, decisions: StepCapture) -> ExceptionRecord | None:
    if error is None:
        return None
    kind = f"{type(error).__module__}.{type(error).__qualname__}"
    if not decisions.error_detail:
        return ExceptionRecord(type=kind)
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return ExceptionRecord(
        type=kind,
        message=mask_secrets(str(error), decisions.redact),
        traceback=mask_secrets(text, decisions.redact),
    )
