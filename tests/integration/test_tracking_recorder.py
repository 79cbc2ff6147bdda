"""Run records land in a real ZenML store as runs, step runs, metadata and artifacts."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
from zenml.client import Client
from zenml.enums import ExecutionStatus

from tests.integration.conftest import served
from tests.services import log_events
from zenml_serving.tracking.recorder import ZenStoreRecorder
from zenml_serving.tracking.records import ArtifactToSave, ExceptionRecord, RunRecord, StepRunRecord

TEXT = "examples.text_pipeline:text_pipeline"
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def record(status: str, steps: tuple[StepRunRecord, ...], **extra: object) -> RunRecord:
    pipeline = served(TEXT)
    assert pipeline.project_id is not None
    return RunRecord(
        invocation_id=str(uuid.uuid4()),
        snapshot_id=pipeline.snapshot_id,
        project_id=pipeline.project_id,
        pipeline_name=pipeline.name,
        status=status,  # type: ignore[arg-type]
        started_at=NOW,
        finished_at=NOW + dt.timedelta(seconds=1),
        steps=steps,
        **extra,  # type: ignore[arg-type]
    )


def step(name: str, status: str = "completed", **extra: object) -> StepRunRecord:
    return StepRunRecord(
        name=name,
        status=status,  # type: ignore[arg-type]
        started_at=NOW,
        finished_at=NOW + dt.timedelta(milliseconds=5),
        **extra,  # type: ignore[arg-type]
    )


class TestZenStoreRecorder:
    """What each kind of record becomes in the store."""

    def test_a_completed_invocation_is_a_completed_run_with_metadata_and_artifacts(self) -> None:
        materializers = served(TEXT).step("format_result").output_materializers["output"]
        run_record = record(
            "completed",
            (
                step("normalise"),
                step("score", metadata={"duration_ms": 0.1}),
                step(
                    "format_result",
                    artifacts={"output": ArtifactToSave({"label": "positive"}, materializers)},
                ),
            ),
            metadata={"invocation_id": "inv-1", "capture_mode": "full"},
        )
        ZenStoreRecorder().write(run_record)
        run = Client().get_pipeline_run(f"text_pipeline-serving-{run_record.invocation_id}")
        assert run.status == ExecutionStatus.COMPLETED
        assert run.run_metadata["invocation_id"] == "inv-1"
        assert run.orchestrator_run_id == run_record.invocation_id
        assert set(run.steps) == {"normalise", "score", "format_result"}
        assert run.steps["score"].run_metadata["duration_ms"] == 0.1
        artifact = run.steps["format_result"].outputs["output"][0]
        assert artifact.load() == {"label": "positive"}
        assert run.steps["normalise"].outputs == {}

    def test_a_failed_step_fails_the_run_with_its_error(self) -> None:
        run_record = record(
            "failed",
            (
                step("normalise"),
                step(
                    "score",
                    "failed",
                    exception=ExceptionRecord("ValueError", "bad", "Traceback ..."),
                ),
            ),
        )
        run = ZenStoreRecorder().write(run_record)
        fetched = Client().get_pipeline_run(run.id)
        assert fetched.status == ExecutionStatus.FAILED
        assert fetched.steps["score"].status == ExecutionStatus.FAILED
        assert "format_result" not in fetched.steps

    def test_a_failed_step_links_its_persisted_inputs(self) -> None:
        run_record = record(
            "failed",
            (
                step("normalise"),
                step(
                    "score",
                    "failed",
                    exception=ExceptionRecord("ValueError"),
                    input_artifacts={
                        "text": ArtifactToSave("the text that failed"),
                        "unpicklable": ArtifactToSave(threading.Lock()),
                    },
                ),
            ),
        )
        with log_events("zenml_serving.tracking") as events:
            run = ZenStoreRecorder().write(run_record)
        score = Client().get_pipeline_run(run.id).steps["score"]
        assert score.status == ExecutionStatus.FAILED
        assert score.inputs["text"][0].load() == "the text that failed"
        assert "unpicklable" not in score.inputs, "a value that cannot be saved is skipped"
        (skipped,) = [e for e in events if e["event"] == "tracking_input_not_persisted"]
        assert (skipped["step"], skipped["input"]) == ("score", "unpicklable")

    @pytest.mark.parametrize("status", ["cancelled", "timed_out"])
    def test_a_stopped_invocation_is_a_stopped_run(self, status: str) -> None:
        run_record = record(
            status, (step("normalise"), step("score", "cancelled")), status_reason=f"{status} now"
        )
        run = ZenStoreRecorder().write(run_record)
        fetched = Client().get_pipeline_run(run.id)
        assert fetched.status == ExecutionStatus.STOPPED
        assert fetched.steps["score"].status == ExecutionStatus.STOPPED

    def test_writing_the_same_record_twice_keeps_one_run(self) -> None:
        run_record = record("completed", (step("normalise"), step("score"), step("format_result")))
        recorder = ZenStoreRecorder()
        first = recorder.write(run_record)
        second = recorder.write(run_record)
        assert first.id == second.id
        assert len(Client().get_pipeline_run(first.id).steps) == 3
