"""Run-level previews (request parameters, pipeline outputs) obey the per-value decisions."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from tests.unit.capture.served import ids_for_rate, served_pipeline, served_step, with_output_hint
from zenml_serving.capture import (
    Capture,
    CaptureDefaults,
    CapturePlan,
    build_capture_plan,
    is_sampled,
)
from zenml_serving.deployment.model import FromParameter, PipelineOutput, ServedStep

PARAMETERS = {"text": "hello", "note": "private", "city": "Oslo"}


def annotate(text: str, note: Annotated[str, Capture("none")]) -> str:
    return text + note


def lookup(city: str, memo: str) -> str:
    return city + memo


def step(
    name: str, function: Any, capture: dict[str, Any] | None = None, **wiring: str
) -> ServedStep:
    """A step whose inputs are wired to the named parameters (input=parameter)."""
    served = served_step(name, function, capture)
    inputs = {arg: FromParameter(wiring.get(arg, arg)) for arg in served.inputs}
    return dataclasses.replace(served, inputs=inputs)


def plan(*steps: ServedStep, capture: dict[str, Any] | None = None, **defaults: Any) -> CapturePlan:
    pipeline = served_pipeline(*steps, capture=capture)
    outputs = tuple(PipelineOutput(name=s.name, step=s.name, output=s.outputs[0]) for s in steps)
    pipeline = dataclasses.replace(pipeline, outputs=outputs)
    return build_capture_plan(pipeline, CaptureDefaults(**defaults))


class TestParameters:
    def test_a_parameter_feeding_a_none_input_is_left_out(self) -> None:
        capture = plan(step("annotate", annotate)).resolve("inv-1")
        assert capture.run_parameters(PARAMETERS) == {"text": "hello", "city": "Oslo"}

    def test_the_strictest_of_several_inputs_wins(self) -> None:
        # `note` feeds annotate.text (full) and lookup.memo (none, the step's own extra).
        capture = plan(
            step("annotate", annotate, note="city"),
            step("lookup", lookup, {"inputs": {"memo": "none"}}, memo="note"),
        ).resolve("inv-1")
        assert capture.run_parameters({"text": "t", "note": "n", "city": "c"}) == {"text": "t"}

    def test_a_metadata_input_withholds_its_parameter_too(self) -> None:
        capture = plan(
            step("lookup", lookup, memo="note"), capture={"inputs": {"memo": "metadata"}}
        ).resolve("inv-1")
        assert capture.run_parameters(PARAMETERS) == {"text": "hello", "city": "Oslo"}

    def test_no_run_level_payload_is_none(self) -> None:
        capture = plan(step("lookup", lookup, memo="note"), mode="metadata")
        assert capture.resolve("inv-1").run_parameters(PARAMETERS) is None

    def test_on_failure_the_failing_step_decides_with_its_failure_decision(self) -> None:
        capture = plan(
            step("lookup", lookup, memo="note"),
            step("annotate", annotate, note="nothing", text="city"),
            mode="errors_only",
        ).resolve("inv-1")
        assert capture.run_parameters(PARAMETERS) is None, "errors_only: nothing on success"
        # city feeds lookup.city and annotate.text: shown only where both show.
        assert capture.run_parameters(PARAMETERS, failed_step="lookup") == {
            "text": "hello",
            "note": "private",
        }


class TestOutputs:
    def test_a_captured_output_hint_withholds_the_pipeline_output(self) -> None:
        hinted = served_step("answer", with_output_hint("metadata"), outputs=("answer",))
        capture = plan(hinted, step("lookup", lookup)).resolve("inv-1")
        assert capture.run_outputs({"answer": "a", "lookup": "b"}) == {"lookup": "b"}

    def test_a_step_under_none_withholds_its_output(self) -> None:
        capture = plan(step("lookup", lookup, {"mode": "none"})).resolve("inv-1")
        assert capture.run_outputs({"lookup": "b"}) == {}


class TestOnceResolved:
    def test_invocations_of_the_same_kind_share_one_decision(self) -> None:
        capture_plan = plan(step("lookup", lookup), mode="sampled")
        sampled_ids = [f"inv-{i}" for i in range(1000) if is_sampled(f"inv-{i}", 0.1)]
        unsampled = ids_for_rate(0.1)[1]
        first, second = (capture_plan.resolve(i) for i in sampled_ids[:2])
        assert first.steps is second.steps
        assert first.run_values is second.run_values
        other = capture_plan.resolve(unsampled)
        assert other.steps is not first.steps
        assert other.step("lookup").input("city").preview is False
        assert first.step("lookup").input("city").preview is True
