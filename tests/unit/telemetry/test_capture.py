"""How an invocation's resolved capture shapes span attributes (the capture package decides)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.telemetry_support import CANARY, served_pipeline
from zenml_serving.capture import CaptureDefaults, CaptureMode, build_capture_plan
from zenml_serving.capture.resolved import StepCapture
from zenml_serving.telemetry.capture import metadata_attributes, payload_attributes


def _step(mode: str, step: str = "clean", **defaults: Any) -> StepCapture:
    plan = build_capture_plan(
        served_pipeline(), CaptureDefaults(mode=CaptureMode(mode), **defaults)
    )
    return plan.resolve("invocation-1").step(step)


VALUES = {"text": "hello", "api_key": CANARY}


class TestPayload:
    """Previews only where the capture allows them, rendered and redacted by capture."""

    def test_full(self) -> None:
        attributes = payload_attributes(_step("full"), "input", VALUES)
        assert attributes["zenml.step.input.text.preview"] == '"hello"'
        assert attributes["zenml.step.input.text.truncated"] is False
        assert attributes["zenml.step.input.text.type"] == "str"
        assert CANARY not in json.dumps(attributes)
        assert attributes["zenml.step.input.api_key.preview"] == '"[REDACTED]"'

    @pytest.mark.parametrize("mode", ["metadata", "none", "errors_only"])
    def test_no_previews(self, mode: str) -> None:
        assert payload_attributes(_step(mode), "input", VALUES) == {}

    def test_errors_only_previews_a_failing_steps_inputs(self) -> None:
        attributes = payload_attributes(_step("errors_only"), "input", VALUES, failed=True)
        assert attributes["zenml.step.input.text.preview"] == '"hello"'

    def test_cut_to_the_capture_size_limit(self) -> None:
        attributes = payload_attributes(_step("full", max_bytes=64), "input", {"text": "é" * 100})
        assert attributes["zenml.step.input.text.truncated"] is True
        assert len(attributes["zenml.step.input.text.preview"].encode()) <= 64
        assert attributes["zenml.step.input.text.size_bytes"] == 202


class TestMetadata:
    """Names, types and lengths as three arrays, only for values whose metadata is allowed."""

    def test_metadata(self) -> None:
        attributes = metadata_attributes(_step("metadata"), "input", VALUES)
        assert attributes == {
            "zenml.step.input.names": ("text", "api_key"),
            "zenml.step.input.types": ("str", "str"),
            "zenml.step.input.lengths": (5, len(CANARY)),
        }

    def test_unsized_values(self) -> None:
        attributes = metadata_attributes(_step("full"), "input", {"n": 3})
        assert attributes["zenml.step.input.lengths"] == (-1,)

    def test_none(self) -> None:
        assert metadata_attributes(_step("none"), "input", VALUES) == {}
