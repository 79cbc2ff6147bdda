"""Build a RunRecord from a CapturedInvocation, deciding every field by the capture policy.

Runs on the tracking writer's thread. Every payload passes `capture.preview` (redaction and
truncation, the one path payloads take to any sink) and error texts pass `mask_secrets`.
Run-level previews hold only the parameters and outputs the invocation's decision allows
(`InvocationCapture.run_parameters` / `run_outputs`); a failing step whose inputs the policy
persists (`errors_only`) hands them over as input artifacts.
"""

from __future__ import annotations

import datetime as dt
import traceback
from typing import TYPE_CHECKING, Any

from zenml_serving.capture import (
    describe_value,
    mask_secrets,
    redact,
)
from zenml_serving.capture.redaction import type_name
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
    parameters = capture.run_parameters(
        invocation.parameters, failed_step=outcome.failed_step if failed else None
    )
    if parameters is not None:
        metadata["parameters"] = capture.preview(parameters).as_metadata()
    pipeline_outputs = (
        capture.run_outputs(outcome.result.outputs) if outcome.result is not None else None
    )
    if pipeline_outputs is not None:
        metadata["outputs"] = capture.preview(pipeline_outputs).as_metadata()
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
        # What the step logged with log_metadata(), redacted like every other value; the
        # service's own keys below win over a logged key of the same name.
        **redact(dict(step.metadata), decisions.redact),
        "duration_ms": round((finished - step.started_at) * 1000, 3),
        "attempts": step.attempts,
    }
    served = captured.pipeline.step(step.name)
    upstream = {
        arg: (binding.step, binding.output)
        for arg, binding in served.inputs.items()
        if isinstance(binding, FromStepOutput)
    }
    inputs: dict[str, Any] = {}
    input_artifacts: dict[str, ArtifactToSave] = {}
    for name, value in step.inputs.items():
        decision = decisions.input(name, failed=failed)
        if decision.preview:
            inputs[name] = decisions.value_preview(name, value).as_metadata()
        elif decision.metadata:
            inputs[name] = describe_value(value)
        if decision.persist:
            materializers = _materializers_of(captured, upstream, name)
            input_artifacts[name] = ArtifactToSave(value, materializers)
    if inputs:
        metadata["inputs"] = inputs
    outputs: dict[str, Any] = {}
    artifacts: dict[str, ArtifactToSave] = {}
    for name, value in step.outputs.items():
        decision = decisions.output(name)
        if decision.preview:
            outputs[name] = decisions.value_preview(name, value).as_metadata()
        elif decision.metadata:
            outputs[name] = describe_value(value)
        if decision.persist:
            artifacts[name] = ArtifactToSave(value, served.output_materializers.get(name, ()))
    if outputs:
        metadata["outputs"] = outputs
    return StepRunRecord(
        name=step.name,
        status=status,  # type: ignore[arg-type]
        started_at=_utc(step.started_at),
        finished_at=_utc(finished),
        metadata=metadata,
        artifacts=artifacts,
        input_artifacts=input_artifacts,
        exception=_exception(step.error, decisions) if failed else None,
        upstream_outputs=upstream,
    )


def _materializers_of(
    captured: CapturedInvocation, upstream: dict[str, tuple[str, str]], name: str
) -> tuple[Any, ...]:
    """An input from an upstream output is saved with that output's materializers; a parameter
    or literal with ZenML's default for its type."""
    if name not in upstream:
        return ()
    source_step, source_output = upstream[name]
    return captured.pipeline.step(source_step).output_materializers.get(source_output, ())


def _exception(error: BaseException | None, decisions: StepCapture) -> ExceptionRecord | None:
    if error is None:
        return None
    kind = type_name(error)
    if not decisions.error_detail:
        return ExceptionRecord(type=kind)
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return ExceptionRecord(
        type=kind,
        message=mask_secrets(str(error), decisions.redact),
        traceback=mask_secrets(text, decisions.redact),
    )
