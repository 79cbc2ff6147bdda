"""ZenStoreRecorder: write a RunRecord as a ZenML pipeline run with step runs and artifacts.

This is the one module that creates runs in the ZenML store. It uses the store's create and
update calls and ZenML's public `save_artifact` / `Client.create_run_metadata`; no
orchestrator, no step launcher (that path costs about a second per run). ZenML derives a
static pipeline's run status from its step runs, so:
- completed: every step run is created `completed` and the run completes by itself;
- failed: the failing step run is created `failed`, which fails the run;
- cancelled / timed out: steps that ran are recorded, the one that was running as `stopped`,
  and the run is asked to stop, which ZenML turns into `stopped` with our reason.
The invocation id is the run's `orchestrator_run_id`, so writing a record twice (a retry after
a store hiccup) finds the same run instead of creating a second one.
A step's inputs are linked to the upstream outputs persisted for this run; inputs the policy
persists themselves (a failing step under `errors_only`) are saved as artifacts of their own
(ZenML's `manual` kind: no step produced them) and linked as the step's inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from zenml_serving.tracking.records import run_name_of

if TYPE_CHECKING:
    from zenml.client import Client

    from zenml_serving.tracking.records import RunRecord, StepRunRecord

__all__ = ["ZenStoreRecorder"]

_log = structlog.stdlib.get_logger(__name__)

TAG = "zenml-serving"


class ZenStoreRecorder:
    """Writes run records through a ZenML Client (one per writer thread)."""

    def __init__(self, client: Client | None = None) -> None:
        from zenml.client import Client

        self._client = client if client is not None else Client()

    def write(self, record: RunRecord) -> Any:
        """Create the run, its step runs, metadata and artifacts; return the run model."""
        from zenml.enums import ExecutionStatus, MetadataResourceTypes
        from zenml.models import PipelineRunRequest, PipelineRunUpdate, RunMetadataResource

        store = self._client.zen_store
        run, created = store.get_or_create_run(
            PipelineRunRequest(
                name=record.run_name or run_name_of(record.pipeline_name, record.invocation_id),
                snapshot=record.snapshot_id,
                project=record.project_id,
                status=ExecutionStatus.RUNNING,
                start_time=record.started_at,
                orchestrator_run_id=record.invocation_id,
                tags=[TAG],
            )
        )
        if record.metadata:
            self._client.create_run_metadata(
                metadata=dict(record.metadata),
                resources=[RunMetadataResource(id=run.id, type=MetadataResourceTypes.PIPELINE_RUN)],
            )
        # A retried write finds the run it created before: skip the step runs already there.
        existing = set() if created else set(self._client.get_pipeline_run(run.id).steps)
        persisted: dict[tuple[str, str], Any] = {}
        for step in record.steps:
            if step.name not in existing:
                self._write_step(run.id, record, step, persisted)
        if record.status in ("cancelled", "timed_out"):
            reason = record.status_reason or record.status.replace("_", " ")
            run = store.update_run(
                run.id,
                PipelineRunUpdate(status=ExecutionStatus.STOPPING, status_reason=reason),
            )
        return run

    def _write_step(
        self,
        run_id: Any,
        record: RunRecord,
        step: StepRunRecord,
        persisted: dict[tuple[str, str], Any],
    ) -> None:
        from zenml.enums import ExecutionStatus, MetadataResourceTypes
        from zenml.models import ExceptionInfo, RunMetadataResource, StepRunRequest

        status = {
            "completed": ExecutionStatus.COMPLETED,
            "failed": ExecutionStatus.FAILED,
            "cancelled": ExecutionStatus.STOPPED,
        }[step.status]
        outputs = {
            name: [self._save_artifact(record, step, name, artifact).id]
            for name, artifact in step.artifacts.items()
        }
        for name, ids in outputs.items():
            persisted[step.name, name] = ids[0]
        # Lineage: an input that came from a persisted upstream output is linked to it.
        inputs = {
            arg: [persisted[source]]
            for arg, source in step.upstream_outputs.items()
            if source in persisted
        }
        for name, artifact in step.input_artifacts.items():
            if name in inputs:
                continue
            try:
                saved = self._save_artifact(record, step, f"inputs.{name}", artifact, output=False)
            except Exception as exc:  # the run and the failure are worth more than one input
                _log.warning(
                    "tracking_input_not_persisted",
                    step=step.name,
                    input=name,
                    error_type=type(exc).__name__,
                )
                continue
            inputs[name] = [saved.id]
        exception_info = None
        if step.exception is not None:
            exception_info = ExceptionInfo(
                traceback=step.exception.traceback or "",
                message=step.exception.message,
                source=step.exception.type,
            )
        created = self._client.zen_store.create_run_step(
            StepRunRequest(
                name=step.name,
                start_time=step.started_at,
                end_time=step.finished_at,
                status=status,
                pipeline_run_id=run_id,
                project=record.project_id,
                inputs=inputs,
                outputs=outputs,
                exception_info=exception_info,
            )
        )
        if step.metadata:
            self._client.create_run_metadata(
                metadata=dict(step.metadata),
                resources=[RunMetadataResource(id=created.id, type=MetadataResourceTypes.STEP_RUN)],
            )

    @staticmethod
    def _save_artifact(
        record: RunRecord,
        step: StepRunRecord,
        value_name: str,
        artifact: Any,
        *,
        output: bool = True,
    ) -> Any:
        from zenml import save_artifact
        from zenml.enums import ArtifactSaveType
        from zenml.materializers.materializer_registry import materializer_registry
        from zenml.utils import materializer_utils, source_utils

        materializer: Any = None
        if artifact.materializers:
            classes = [source_utils.load(source) for source in artifact.materializers]
            materializer = materializer_utils.select_materializer(
                data_type=type(artifact.value), materializer_classes=classes
            )
        else:
            materializer = materializer_registry[type(artifact.value)]
        return save_artifact(
            artifact.value,
            name=f"{record.pipeline_name}::{step.name}::{value_name}",
            materializer=materializer,
            save_type=ArtifactSaveType.STEP_OUTPUT if output else ArtifactSaveType.MANUAL,
            has_custom_name=False,
            tags=[TAG],
        )
