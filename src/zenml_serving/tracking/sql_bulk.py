"""SqlBulkRecorder: many run records as ZenML runs in one SQL transaction (SQL stores only).

ZenML's store API writes a run in ~10 transactions with a dozen round trips and pydantic
models in between (0.1-0.3 s of CPU a run). For records that persist no artifact, this module
builds the same rows with ZenML's own schema classes (`PipelineRunSchema.from_request`,
`StepRunSchema.from_request`, the run-metadata and tag links, the step DAG) and commits a
whole batch at once. That is below ZenML's public API, which is acceptable only because
ZenML's minor version is pinned (<0.99) and `tests/integration/test_tracking_sql_bulk.py`
reads every written field back through `Client`; records with artifacts, models or anything
unusual go through `ZenStoreRecorder` (the public API), as does every REST store.

Statuses are final at insert, as ZenML would derive them from the step runs: completed,
failed (the failing step), or stopped with the reason for a cancelled / timed-out run.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from uuid import uuid4

if TYPE_CHECKING:
    from uuid import UUID

    from zenml.client import Client
    from zenml.zen_stores.sql_zen_store import SqlZenStore

    from zenml_serving.tracking.records import RunRecord, StepRunRecord

__all__ = ["SqlBulkRecorder", "bulk_eligible"]

TAG = "zenml-serving"


def bulk_eligible(record: RunRecord) -> bool:
    """Records this path writes: no artifact to save (artifacts go through save_artifact)."""
    return not any(step.artifacts or step.input_artifacts for step in record.steps)


class _SnapshotFacts:
    """What a run needs from its snapshot, read once per snapshot."""

    def __init__(self, pipeline_id: UUID, heartbeat: bool, upstream: dict[str, list[str]]):
        self.pipeline_id = pipeline_id
        self.heartbeat = heartbeat
        self.upstream = upstream


class SqlBulkRecorder:
    """Writes batches of artifact-free run records straight into a SqlZenStore."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._store: SqlZenStore = client.zen_store  # type: ignore[assignment]
        self._user_id = client.active_user.id
        self._snapshots: dict[UUID, _SnapshotFacts | None] = {}
        self._tag: UUID | None = None

    def supports(self, record: RunRecord) -> bool:
        """True when this record can be written in bulk (else use the public API)."""
        return bulk_eligible(record) and self._facts(record.snapshot_id) is not None

    def write(self, records: list[RunRecord]) -> None:
        """Write `records` (all `supports`) in one transaction; nothing is written on error."""
        from sqlmodel import Session
        from zenml.enums import TaggableResourceTypes
        from zenml.zen_stores.schemas import TagResourceSchema

        if not records:
            return
        # Before the transaction: creating the tag takes a connection of its own, which on
        # SQLite would wait for this transaction's lock.
        tag_id = self._tag_id()
        with Session(self._store.engine) as session:
            indexes = self._reserve_run_indexes(session, records)
            runs, step_runs, parents, metadata = [], [], [], []
            for record in records:
                run, steps, links, values = self._rows(record, indexes)
                runs.append(run)
                step_runs.extend(steps)
                parents.extend(links)
                metadata.extend(values)
            # No ORM relationships tie these rows together: add them in foreign-key order.
            for rows in (runs, step_runs, parents):
                session.add_all(rows)
                session.flush()
            self._add_metadata(session, records[0].project_id, metadata)
            session.add_all(
                TagResourceSchema(
                    tag_id=tag_id,
                    resource_id=run.id,
                    resource_type=TaggableResourceTypes.PIPELINE_RUN.value,
                )
                for run in runs
            )
            session.commit()

    def _reserve_run_indexes(self, session: Any, records: list[RunRecord]) -> dict[UUID, list[int]]:
        """Number the runs on per pipeline, as ZenML does (`PipelineSchema.run_count`)."""
        from sqlalchemy import update
        from sqlmodel import col, select
        from zenml.zen_stores.schemas import PipelineSchema

        counts: dict[UUID, int] = {}
        for record in records:
            pipeline_id = self._known(record.snapshot_id).pipeline_id
            counts[pipeline_id] = counts.get(pipeline_id, 0) + 1
        indexes = {}
        for pipeline_id, count in counts.items():
            session.execute(
                update(PipelineSchema)
                .where(col(PipelineSchema.id) == pipeline_id)
                .values(run_count=col(PipelineSchema.run_count) + count)
            )
            last = session.exec(
                select(PipelineSchema.run_count).where(col(PipelineSchema.id) == pipeline_id)
            ).one()
            indexes[pipeline_id] = list(range(last - count + 1, last + 1))
        return indexes

    def _rows(
        self, record: RunRecord, indexes: dict[UUID, list[int]]
    ) -> tuple[Any, list[Any], list[Any], list[tuple[UUID, str, dict[str, Any]]]]:
        """The run, its step runs, the step DAG links and the metadata of one record."""
        from zenml.enums import ExecutionStatus, MetadataResourceTypes
        from zenml.models import PipelineRunRequest
        from zenml.zen_stores.schemas import PipelineRunSchema, StepRunParentsSchema

        facts = self._known(record.snapshot_id)
        run = PipelineRunSchema.from_request(
            PipelineRunRequest(
                name=f"{record.pipeline_name}-serving-{record.invocation_id}",
                snapshot=record.snapshot_id,
                project=record.project_id,
                user=self._user_id,
                status=ExecutionStatus.RUNNING,
                start_time=record.started_at,
                orchestrator_run_id=record.invocation_id,
            ),
            pipeline_id=facts.pipeline_id,
            index=indexes[facts.pipeline_id].pop(0),
            enable_heartbeat=facts.heartbeat,
        )
        run.status = _run_status(record.status).value
        run.end_time = record.finished_at
        if record.status in ("cancelled", "timed_out"):
            run.status_reason = record.status_reason or record.status.replace("_", " ")
        metadata: list[tuple[UUID, str, dict[str, Any]]] = []
        if record.metadata:
            metadata.append(
                (run.id, MetadataResourceTypes.PIPELINE_RUN.value, dict(record.metadata))
            )
        step_runs = {step.name: self._step_row(record, step, run.id) for step in record.steps}
        for step in record.steps:
            if step.metadata:
                metadata.append(
                    (
                        step_runs[step.name].id,
                        MetadataResourceTypes.STEP_RUN.value,
                        dict(step.metadata),
                    )
                )
        parents = [
            StepRunParentsSchema(child_id=child.id, parent_id=step_runs[parent].id)
            for name, child in step_runs.items()
            for parent in facts.upstream.get(name, ())
            if parent in step_runs
        ]
        return run, list(step_runs.values()), parents, metadata

    def _step_row(self, record: RunRecord, step: StepRunRecord, run_id: UUID) -> Any:
        from zenml.models import ExceptionInfo, StepRunRequest
        from zenml.zen_stores.schemas import StepRunSchema

        exception_info = None
        if step.exception is not None:
            exception_info = ExceptionInfo(
                traceback=step.exception.traceback or "",
                message=step.exception.message,
                source=step.exception.type,
            )
        return StepRunSchema.from_request(
            StepRunRequest(
                name=step.name,
                start_time=step.started_at,
                end_time=step.finished_at,
                status=_step_status(step.status),
                pipeline_run_id=run_id,
                project=record.project_id,
                user=self._user_id,
                exception_info=exception_info,
            ),
            snapshot_id=record.snapshot_id,
            version=1,
            is_retriable=False,
        )

    def _add_metadata(
        self, session: Any, project_id: UUID, rows: list[tuple[UUID, str, dict[str, Any]]]
    ) -> None:
        """Run metadata as `Client.create_run_metadata` stores it: one row per key, linked.

        Core inserts (one executemany per table): a batch holds thousands of these rows, and
        an ORM object each cost more than everything else in the batch (measured).
        """
        from sqlalchemy import insert
        from zenml.utils.time_utils import utc_now
        from zenml.zen_stores.schemas import RunMetadataResourceSchema, RunMetadataSchema

        now = utc_now()
        values, links = [], []
        for resource_id, resource_type, metadata in rows:
            for key, value, type_ in self._typed(metadata):
                row_id = uuid4()
                values.append(
                    {
                        "id": row_id,
                        "created": now,
                        "updated": now,
                        "project_id": project_id,
                        "user_id": self._user_id,
                        "key": key,
                        "value": value,
                        "type": type_,
                    }
                )
                links.append(
                    {
                        "id": uuid4(),
                        "resource_id": resource_id,
                        "resource_type": resource_type,
                        "run_metadata_id": row_id,
                    }
                )
        if values:
            session.execute(insert(RunMetadataSchema.__table__), values)  # type: ignore[attr-defined]
            session.execute(insert(RunMetadataResourceSchema.__table__), links)  # type: ignore[attr-defined]

    def _known(self, snapshot_id: UUID) -> _SnapshotFacts:
        facts = self._facts(snapshot_id)
        assert facts is not None, "write only records `supports` accepted"
        return facts

    def _tag_id(self) -> UUID:
        """The `zenml-serving` tag, created through the public API the first time."""
        if self._tag is None:
            try:
                self._tag = self._client.get_tag(TAG).id
            except KeyError:
                self._tag = self._client.create_tag(name=TAG).id
        return self._tag

    def _typed(self, values: dict[str, Any]) -> list[tuple[str, str, Any]]:
        """(key, JSON value, metadata type), skipping what ZenML's Client would skip."""
        from zenml.metadata.metadata_types import get_metadata_type
        from zenml.utils.json_utils import pydantic_encoder

        rows = []
        for key, value in values.items():
            try:
                type_ = get_metadata_type(value)
            except ValueError:
                continue
            rows.append((key, json.dumps(value, default=pydantic_encoder), type_))
        return rows

    def _facts(self, snapshot_id: UUID) -> _SnapshotFacts | None:
        if snapshot_id not in self._snapshots:
            snapshot = self._client.get_snapshot(snapshot_id)
            pipeline = snapshot.pipeline
            config = snapshot.pipeline_configuration
            if pipeline is None or config.model is not None or snapshot.is_dynamic:
                self._snapshots[snapshot_id] = None  # the public API handles what we do not
            else:
                upstream = {
                    name: list(step.spec.upstream_steps)
                    for name, step in snapshot.step_configurations.items()
                }
                heartbeat = config.enable_heartbeat
                self._snapshots[snapshot_id] = _SnapshotFacts(
                    pipeline.id, True if heartbeat is None else bool(heartbeat), upstream
                )
        return self._snapshots[snapshot_id]


def _run_status(status: str) -> Any:
    from zenml.enums import ExecutionStatus

    return {
        "completed": ExecutionStatus.COMPLETED,
        "failed": ExecutionStatus.FAILED,
        "cancelled": ExecutionStatus.STOPPED,
        "timed_out": ExecutionStatus.STOPPED,
    }[status]


def _step_status(status: str) -> Any:
    from zenml.enums import ExecutionStatus

    return {
        "completed": ExecutionStatus.COMPLETED,
        "failed": ExecutionStatus.FAILED,
        "cancelled": ExecutionStatus.STOPPED,
    }[status]
