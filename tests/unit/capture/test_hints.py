"""Capture hints written in annotations are found, on inputs and on (tuple) outputs."""

from __future__ import annotations

from typing import Annotated

import pydantic
import pytest

from tests.unit.capture import steps
from zenml_serving.capture import (
    Capture,
    CaptureConfigError,
    CapturedOutput,
    CaptureMode,
    read_capture_hints,
)

NONE, FULL, METADATA = CaptureMode.NONE, CaptureMode.FULL, CaptureMode.METADATA


class TestCaptureMarker:
    """`Capture(mode)` validates its mode when the step module is imported."""

    def test_accepts_a_mode_name_case_insensitively(self) -> None:
        assert Capture("None").mode is NONE
        assert Capture(CaptureMode.FULL).mode is FULL
        assert Capture("none") == Capture(NONE)
        assert repr(Capture("metadata")) == "Capture('metadata')"

    def test_rejects_an_unknown_mode_naming_the_choices(self) -> None:
        with pytest.raises(CaptureConfigError, match=r"'hidden' is not a capture mode.*metadata"):
            Capture("hidden")

    def test_is_usable_in_annotated_metadata(self) -> None:
        # Annotated metadata must be hashable for typing's cache; the loader builds
        # validators for hinted inputs.
        assert hash(Capture("none")) == hash(Capture("none"))
        adapter = pydantic.TypeAdapter(Annotated[str, Capture("none")])
        assert adapter.validate_python("x") == "x"


class TestCapturedOutput:
    """`CapturedOutput` is an ArtifactConfig ZenML 0.98 accepts, with a validated `capture`."""

    def test_zenml_accepts_it_and_keeps_the_output_name(self) -> None:
        assert list(steps.answer.entrypoint_definition.outputs) == ["answer"]
        assert list(steps.describe.entrypoint_definition.outputs) == ["mean", "spread", "count"]
        assert list(steps.legacy.entrypoint_definition.outputs) == ["shout"]

    def test_zenml_accepts_a_capture_hint_on_an_input(self) -> None:
        assert list(steps.answer.entrypoint_definition.inputs) == ["question", "api_token"]

    def test_rejects_an_unknown_mode_naming_the_choices(self) -> None:
        with pytest.raises(pydantic.ValidationError, match="'secret' is not a capture mode"):
            CapturedOutput(name="x", capture="secret")

    def test_capture_is_required(self) -> None:
        with pytest.raises(pydantic.ValidationError, match="capture"):
            CapturedOutput(name="x")  # type: ignore[call-arg]


class TestReadingHints:
    """Hints come from the function's own annotations, matched to ZenML's value names."""

    def test_plain_function_input_hint(self) -> None:
        hints = read_capture_hints(steps.plain, where="step 'plain'")
        assert dict(hints.inputs) == {"token": NONE}
        assert dict(hints.outputs) == {}

    def test_zenml_step_single_named_output(self) -> None:
        hints = read_capture_hints(
            steps.answer.entrypoint,
            where="step 'answer'",
            inputs=["question", "api_token"],
            outputs=["answer"],
        )
        assert dict(hints.inputs) == {"api_token": NONE}
        assert dict(hints.outputs) == {"answer": METADATA}

    def test_tuple_outputs_map_by_position(self) -> None:
        hints = read_capture_hints(
            steps.describe.entrypoint, where="step 'describe'", outputs=["mean", "spread", "count"]
        )
        assert dict(hints.outputs) == {"mean": FULL, "count": NONE}

    def test_legacy_name_then_config_form(self) -> None:
        hints = read_capture_hints(steps.legacy.entrypoint, where="s", outputs=["shout"])
        assert dict(hints.outputs) == {"shout": CaptureMode.ERRORS_ONLY}

    def test_names_are_derived_like_zenml_without_the_output_list(self) -> None:
        assert dict(read_capture_hints(steps.describe.entrypoint, where="s").outputs) == {
            "mean": FULL,
            "count": NONE,
        }
        assert dict(read_capture_hints(steps.unnamed_tuple, where="s").outputs) == {
            "output_1": NONE
        }
        assert dict(read_capture_hints(steps.legacy.entrypoint, where="s").outputs) == {
            "shout": CaptureMode.ERRORS_ONLY
        }

    def test_hints_inside_optional_are_found(self) -> None:
        hints = read_capture_hints(steps.optional_hints, where="s")
        assert dict(hints.inputs) == {"token": NONE, "count": METADATA, "both": NONE}

    def test_inputs_outside_the_given_names_are_ignored(self) -> None:
        hints = read_capture_hints(steps.plain, where="s", inputs=["city"])
        assert dict(hints.inputs) == {}

    def test_one_unresolvable_annotation_does_not_hide_the_other_hints(self) -> None:
        hints = read_capture_hints(steps.unresolvable_plain, where="step 'u'")
        assert dict(hints.inputs) == {"token": NONE}


class TestUnreadableHints:
    """A hint that cannot be placed stops startup instead of being silently dropped."""

    def test_an_unresolvable_hinted_annotation_is_an_error(self) -> None:
        with pytest.raises(CaptureConfigError) as caught:
            read_capture_hints(steps.unresolvable_hint, where="step 'u'")
        message = str(caught.value)
        assert message.startswith("step 'u': serving_capture hint in the annotation of 'amount'")
        assert "NameError" in message
        assert "would be lost" in message

    def test_two_hints_on_one_input_are_an_error(self) -> None:
        with pytest.raises(CaptureConfigError, match="for input 'secret' is given 2 different"):
            read_capture_hints(steps.twice_hinted, where="step 't'")

    def test_a_hint_naming_another_output_is_an_error(self) -> None:
        with pytest.raises(CaptureConfigError) as caught:
            read_capture_hints(steps.answer.entrypoint, where="step 'a'", outputs=["result"])
        assert "names output 'answer', but the step's output 0 is 'result'" in str(caught.value)

    def test_a_hinted_tuple_that_does_not_match_the_outputs_is_an_error(self) -> None:
        with pytest.raises(CaptureConfigError, match="cannot be matched to the step's outputs"):
            read_capture_hints(steps.describe.entrypoint, where="step 'd'", outputs=["a", "b"])

    def test_an_unhinted_tuple_that_does_not_match_is_no_hint(self) -> None:
        def f() -> tuple[int, int, int]:
            return 1, 2, 3

        assert dict(read_capture_hints(f, where="s", outputs=["a", "b"]).outputs) == {}
