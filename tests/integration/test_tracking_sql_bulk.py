"""Contract: a run written in bulk (ZenML's SQL schema classes) reads back through `Client`
exactly like the same record written through ZenML's public store API.

This is what lets the bulk path go below ZenML's public API: if a ZenML upgrade changes
the schema, these comparisons fail before users see a different run.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest
from zenml.client import Client
from zenml.enums import ExecutionStatus

from tests.integration.test_tracking_recorder import record, step
from zenml_serving.tracking.batch import BatchRecorder
from zenml_serving.tracking.recorder import ZenStoreRecorder
from zenml_serving.tracking.records import ArtifactToSave, ExceptionRecord, RunRecord
from zenml_serving.tracking.sql_bulk import SqlBulkRecorder

RUN_METADATA = {
    "invocation_id": "inv-1",
    "mode": "sync",
    "duration_ms": 3.25,
    "capture_mode": "metadata",
    "parameters": {"text": "hello", "n": 3, "nested": {"list": [1, 2.5, None]}},
}


def _twin(run_record: RunRecord) -> RunRecord:
    return dataclasses.replace(run_record, invocation_id=str(uuid.uuid4()))


def _view(run_id: Any) -> dict[str, Any]:
    """Everything a user sees of a run through Client, minus ids and names."""
    run = Client().get_pipeline_run(run_id)
    steps = {}
    for name, step_run in run.steps.items():
        info = step_run.exception_info
        steps[name] = {
            "status": step_run.status,
            "start_time": step_run.start_time,
            "end_time": step_run.end_time,
            "metadata": dict(step_run.run_metadata),
            "exception": (info.message, info.traceback, info.source) if info else None,
            "parents": sorted(n for n, r in run.steps.items() if r.id in step_run.parent_step_ids),
            "project": step_run.project.id,
            "user": step_run.user.id if step_run.user else None,
            "inputs": dict(step_run.inputs),
            "outputs": dict(step_run.outputs),
        }
    metadata = dict(run.run_metadata)
    return {
        "status": run.status,
        "status_reason": run.get_body().status_reason
        if run.status == ExecutionStatus.STOPPED
        else None,
        "start_time": run.start_time,
        "pipeline": run.pipeline.id if run.pipeline else None,
        "snapshot": run.snapshot.id if run.snapshot else None,
        "project": run.project.id,
        "user": run.user.id if run.user else None,
        "tags": sorted(tag.name for tag in run.tags),
        "metadata": metadata,
        "steps": steps,
    }


CASES = {
    "completed": lambda: record(
        "completed",
        (
            step("normalise", metadata={"duration_ms": 0.5, "attempts": 1}),
            step("score", metadata={"outputs": {"score": {"type": "float", "preview": "0.9"}}}),
            step("format_result"),
        ),
        metadata=RUN_METADATA,
    ),
    "failed": lambda: record(
        "failed",
        (
            step("normalise"),
            step(
                "score",
                "failed",
                exception=ExceptionRecord("ValueError", "bad input", "Traceback (most recent)"),
            ),
        ),
        metadata={**RUN_METADATA, "failed_step": "score"},
    ),
    "timed_out": lambda: record(
        "timed_out",
        (step("normalise"), step("score", "cancelled")),
        status_reason="timed out after 5 s",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bulk_written_run_reads_back_like_one_written_through_the_public_api(
    case: str,
) -> None:
    reference = CASES[case]()
    bulk_record = _twin(reference)
    public_run = ZenStoreRecorder().write(reference)
    bulk = SqlBulkRecorder(Client())
    assert bulk.supports(bulk_record)
    bulk.write([bulk_record])
    bulk_run = Client().get_pipeline_run(f"text_pipeline-serving-{bulk_record.invocation_id}")
    assert bulk_run.orchestrator_run_id == bulk_record.invocation_id
    public, written = _view(public_run.id), _view(bulk_run.id)
    assert written["metadata"].pop("invocation_id", None) == public["metadata"].pop(
        "invocation_id", None
    )
    assert written == public
    assert bulk_run.end_time is not None
    assert bulk_run.index > public_run.index, "runs are numbered on, as ZenML numbers them"


def test_a_batch_of_runs_lands_whole_and_listed() -> None:
    records = [_twin(CASES["completed"]()) for _ in range(20)]
    assert BatchRecorder().write(records) == [None] * 20
    for run_record in records:
        run = Client().get_pipeline_run(f"text_pipeline-serving-{run_record.invocation_id}")
        assert run.status == ExecutionStatus.COMPLETED
        assert set(run.steps) == {"normalise", "score", "format_result"}
    listed = Client().list_pipeline_runs(tags=["zenml-serving"], size=100, sort_by="desc:created")
    assert {r.orchestrator_run_id for r in listed.items} >= {r.invocation_id for r in records}
    indexes = [
        Client().get_pipeline_run(f"text_pipeline-serving-{r.invocation_id}").index for r in records
    ]
    assert len(set(indexes)) == 20


def test_a_record_written_before_falls_back_to_the_public_api_and_stays_one_run() -> None:
    first = _twin(CASES["completed"]())
    ZenStoreRecorder().write(first)
    fresh = _twin(CASES["completed"]())
    assert BatchRecorder().write([first, fresh]) == [None, None]
    for run_record in (first, fresh):
        runs = Client().list_pipeline_runs(orchestrator_run_id=run_record.invocation_id)
        assert runs.total == 1
        assert len(runs.items[0].steps) == 3


def test_records_with_artifacts_go_through_the_public_api() -> None:
    run_record = record(
        "completed",
        (step("normalise"), step("score", artifacts={"score": ArtifactToSave(0.5)})),
    )
    assert not SqlBulkRecorder(Client()).supports(run_record)
    assert BatchRecorder().write([run_record]) == [None]
    run = Client().get_pipeline_run(f"text_pipeline-serving-{run_record.invocation_id}")
    assert run.steps["score"].outputs["score"][0].load() == 0.5


def test_the_tag_is_created_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a fresh store the tag does not exist yet: creating it must not wait on the batch's
    own transaction (on SQLite it did, until the store's lock timeout)."""
    fresh_tag = f"zenml-serving-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr("zenml_serving.tracking.sql_bulk.TAG", fresh_tag)
    run_record = _twin(CASES["completed"]())
    SqlBulkRecorder(Client()).write([run_record])
    run = Client().get_pipeline_run(f"text_pipeline-serving-{run_record.invocation_id}")
    assert [tag.name for tag in run.tags] == [fresh_tag]
