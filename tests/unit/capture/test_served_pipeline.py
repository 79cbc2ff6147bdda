"""A real snapshot, loaded by the service's loader, yields the plan its declarations describe.

This proves the round trip the unit tests assume: ZenML 0.98 accepts the declarations in
`extra` and the hints in annotations, the loader keeps the step's own declaration apart from the
pipeline's, and the hints are read from the imported step functions.
"""

from __future__ import annotations

import pytest

from tests.conftest import REPO_ROOT, snapshot_of
from zenml_serving.capture import CaptureDefaults, CaptureMode, CapturePlan, build_capture_plan

TARGET = "tests.unit.capture.captured_pipeline:captured_pipeline"


@pytest.fixture(scope="module")
def plan() -> CapturePlan:
    from zenml_serving.deployment.loader import load_served_pipeline

    served = load_served_pipeline(snapshot_of(TARGET), source_root=REPO_ROOT)
    return build_capture_plan(served, CaptureDefaults())


class TestLoadedSnapshot:
    """Declarations and hints survive the snapshot and drive the resolved decisions."""

    def test_the_pipeline_declaration_is_read(self, plan: CapturePlan) -> None:
        assert plan.pipeline_name == "captured_pipeline"
        assert plan.pipeline.mode is CaptureMode.SAMPLED
        assert plan.pipeline.sample_rate == 0.25
        assert plan.pipeline.max_bytes == 512

    def test_each_step_keeps_only_its_own_declaration(self, plan: CapturePlan) -> None:
        assert plan.step_declaration("lookup").mode is None  # not the pipeline's `sampled`
        assert plan.step_declaration("render").mode is CaptureMode.ERRORS_ONLY

    def test_hints_come_from_the_imported_functions(self, plan: CapturePlan) -> None:
        assert dict(plan.step_hints("lookup").inputs) == {"api_token": CaptureMode.NONE}
        assert dict(plan.step_hints("lookup").outputs) == {"forecast": CaptureMode.FULL}
        assert dict(plan.step_hints("render").outputs) == {"text": CaptureMode.NONE}

    def test_resolved_decisions(self, plan: CapturePlan) -> None:
        capture = plan.resolve("any-id")
        lookup, render = capture.step("lookup"), capture.step("render")
        assert (lookup.mode, lookup.mode_source) == (CaptureMode.SAMPLED, "pipeline")
        assert lookup.input("city").declared is CaptureMode.FULL  # step entry
        assert lookup.input("api_token").declared is CaptureMode.NONE  # annotation
        assert lookup.output("forecast").declared is CaptureMode.METADATA  # step beats hint
        assert (render.mode, render.mode_source) == (CaptureMode.ERRORS_ONLY, "step")
        assert render.output("text").declared is CaptureMode.NONE  # hint
        assert render.output("length").declared is CaptureMode.ERRORS_ONLY  # global
        assert lookup.max_bytes == 512
