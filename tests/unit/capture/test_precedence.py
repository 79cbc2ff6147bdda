"""Precedence, layer by layer: every combination of layers, globally and per value.

Global mode of a step: step `mode` > request override > pipeline `mode` > service default.
Per value: step per-value > pipeline per-value > annotation > the step's global mode.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Any

import pytest

from tests.unit.capture.served import (
    echo,
    plan_for,
    resolve,
    served_step,
    with_input_hint,
    with_output_hint,
)
from zenml_serving.capture import Capture, CaptureMode

FULL, SAMPLED, ERRORS, META, NONE = (
    CaptureMode.FULL,
    CaptureMode.SAMPLED,
    CaptureMode.ERRORS_ONLY,
    CaptureMode.METADATA,
    CaptureMode.NONE,
)
UNSET = None
MODES_OR_UNSET = (UNSET, *CaptureMode)


def declared(mode: CaptureMode | None, key: str = "mode") -> dict[str, Any]:
    return {} if mode is None else {key: mode.value}


class TestGlobalModeTable:
    """The four layers, read as a table: the highest layer that says something wins."""

    @pytest.mark.parametrize(
        ("service", "pipeline", "override", "step", "winner", "source"),
        [
            (FULL, UNSET, UNSET, UNSET, FULL, "service"),
            (FULL, META, UNSET, UNSET, META, "pipeline"),
            (FULL, META, ERRORS, UNSET, ERRORS, "request"),
            (FULL, META, ERRORS, SAMPLED, SAMPLED, "step"),
            (FULL, UNSET, ERRORS, UNSET, ERRORS, "request"),
            (FULL, UNSET, UNSET, META, META, "step"),
            (FULL, META, UNSET, SAMPLED, SAMPLED, "step"),
            (FULL, UNSET, NONE, META, META, "step"),
            (META, NONE, FULL, UNSET, FULL, "request"),
            (NONE, UNSET, UNSET, UNSET, NONE, "service"),
        ],
    )
    def test_winner(
        self,
        service: CaptureMode,
        pipeline: CaptureMode | None,
        override: CaptureMode | None,
        step: CaptureMode | None,
        winner: CaptureMode,
        source: str,
    ) -> None:
        plan = plan_for(
            served_step("s", echo, declared(step)), capture=declared(pipeline), mode=service
        )
        capture = resolve(plan, None if override is None else {"mode": override.value})
        assert (capture.step("s").mode, capture.step("s").mode_source) == (winner, source)


class TestGlobalModeExhaustive:
    """Every combination of every mode (or none) at every layer."""

    def test_every_combination(self) -> None:
        checked = 0
        for pipeline, step in itertools.product(MODES_OR_UNSET, repeat=2):
            for service in CaptureMode:
                plan = plan_for(
                    served_step("s", echo, declared(step)), capture=declared(pipeline), mode=service
                )
                for request in MODES_OR_UNSET:
                    capture = resolve(plan, None if request is None else {"mode": request.value})
                    run_winner = next(m for m in (request, pipeline, service) if m is not None)
                    step_winner = step if step is not None else run_winner
                    assert capture.mode is run_winner, (service, pipeline, request, step)
                    assert capture.step("s").mode is step_winner, (
                        service,
                        pipeline,
                        request,
                        step,
                    )
                    checked += 1
        assert checked == 6 * 6 * 5 * 6


class TestPerValueTable:
    """Per value, read as a table: step entry > pipeline entry > annotation > global mode."""

    @pytest.mark.parametrize(
        ("step_entry", "pipeline_entry", "annotation", "winner", "source"),
        [
            (UNSET, UNSET, UNSET, META, "global"),
            (UNSET, UNSET, NONE, NONE, "annotation"),
            (UNSET, FULL, NONE, FULL, "pipeline"),
            (ERRORS, FULL, NONE, ERRORS, "step"),
            (ERRORS, UNSET, NONE, ERRORS, "step"),
            (ERRORS, FULL, UNSET, ERRORS, "step"),
            (UNSET, FULL, UNSET, FULL, "pipeline"),
            (NONE, UNSET, FULL, NONE, "step"),
        ],
    )
    def test_input_winner(
        self,
        step_entry: CaptureMode | None,
        pipeline_entry: CaptureMode | None,
        annotation: CaptureMode | None,
        winner: CaptureMode,
        source: str,
    ) -> None:
        step_capture = {"mode": "metadata"}
        if step_entry is not None:
            step_capture["inputs"] = {"text": step_entry.value}  # type: ignore[assignment]
        pipeline_capture = {} if pipeline_entry is None else {"inputs": {"text": pipeline_entry}}
        plan = plan_for(
            served_step("s", with_input_hint(annotation), step_capture), capture=pipeline_capture
        )
        value = resolve(plan).step("s").input("text")
        assert (value.declared, value.source) == (winner, source)

    @pytest.mark.parametrize(
        ("step_outputs", "pipeline_outputs", "annotation", "winner", "source"),
        [
            (UNSET, UNSET, UNSET, META, "global"),
            (UNSET, UNSET, NONE, NONE, "annotation"),
            (UNSET, {"answer": "full"}, NONE, FULL, "pipeline"),
            (UNSET, "full", NONE, FULL, "pipeline"),
            ({"answer": "errors_only"}, "full", NONE, ERRORS, "step"),
            ("errors_only", {"answer": "full"}, NONE, ERRORS, "step"),
            ("none", UNSET, FULL, NONE, "step"),
        ],
    )
    def test_output_winner(
        self,
        step_outputs: Any,
        pipeline_outputs: Any,
        annotation: CaptureMode | None,
        winner: CaptureMode,
        source: str,
    ) -> None:
        step_capture: dict[str, Any] = {"mode": "metadata"}
        if step_outputs is not None:
            step_capture["outputs"] = step_outputs
        pipeline_capture = {} if pipeline_outputs is None else {"outputs": pipeline_outputs}
        step = served_step("s", with_output_hint(annotation), step_capture, outputs=("answer",))
        value = resolve(plan_for(step, capture=pipeline_capture)).step("s").output("answer")
        assert (value.declared, value.source) == (winner, source)


class TestPerValueExhaustive:
    """Every combination of step entry, pipeline entry and annotation, for inputs and outputs."""

    @pytest.mark.parametrize("global_mode", [META, FULL, ERRORS])
    def test_inputs(self, global_mode: CaptureMode) -> None:
        for step_entry, pipeline_entry, annotation in itertools.product(MODES_OR_UNSET, repeat=3):
            step_capture: dict[str, Any] = {}
            if step_entry is not None:
                step_capture["inputs"] = {"text": step_entry.value}
            pipeline_capture: dict[str, Any] = {"mode": global_mode.value}
            if pipeline_entry is not None:
                pipeline_capture["inputs"] = {"text": pipeline_entry.value}
            plan = plan_for(
                served_step("s", with_input_hint(annotation), step_capture),
                capture=pipeline_capture,
            )
            expected = next(
                m for m in (step_entry, pipeline_entry, annotation, global_mode) if m is not None
            )
            got = resolve(plan).step("s").input("text").declared
            assert got is expected, (step_entry, pipeline_entry, annotation, global_mode)

    @pytest.mark.parametrize("global_mode", [META, FULL])
    def test_outputs(self, global_mode: CaptureMode) -> None:
        for step_entry, pipeline_entry, annotation in itertools.product(MODES_OR_UNSET, repeat=3):
            step_capture: dict[str, Any] = {"mode": global_mode.value}
            if step_entry is not None:
                step_capture["outputs"] = {"answer": step_entry.value}
            pipeline_capture = {} if pipeline_entry is None else {"outputs": pipeline_entry.value}
            step = served_step("s", with_output_hint(annotation), step_capture, ("answer",))
            expected = next(
                m for m in (step_entry, pipeline_entry, annotation, global_mode) if m is not None
            )
            got = resolve(plan_for(step, capture=pipeline_capture)).step("s").output("answer")
            assert got.declared is expected, (step_entry, pipeline_entry, annotation)


class TestAnnotationIsSilencedPerValue:
    """A higher-layer entry for one value silences the annotation of that value only."""

    def test_only_the_named_value_changes(self) -> None:
        def score(
            token: Annotated[str, Capture("none")], note: Annotated[str, Capture("metadata")]
        ) -> str:
            return token + note

        plan = plan_for(served_step("score", score, {"mode": "full", "inputs": {"token": "full"}}))
        step = resolve(plan).step("score")
        assert (step.input("token").declared, step.input("token").source) == (FULL, "step")
        assert (step.input("note").declared, step.input("note").source) == (META, "annotation")

    def test_a_pipeline_entry_silences_it_in_every_step_with_that_input(self) -> None:
        hinted = with_input_hint(NONE)
        plan = plan_for(
            served_step("a", hinted),
            served_step("b", hinted, {"inputs": {"text": "metadata"}}),
            capture={"inputs": {"text": "full"}},
        )
        capture = resolve(plan)
        assert capture.step("a").input("text").declared is FULL
        assert capture.step("b").input("text").declared is META


class TestRequestOverride:
    """A request override sits between the step and the pipeline, for mode and sample rate."""

    def test_request_beats_pipeline_and_step_beats_request(self) -> None:
        plan = plan_for(
            served_step("own", echo, {"mode": "metadata"}),
            served_step("inherits", echo),
            capture={"mode": "none"},
        )
        capture = resolve(plan, {"mode": "full"})
        assert capture.mode is FULL
        assert capture.override_applied is True
        assert capture.step("own").mode is META
        assert capture.step("inherits").mode is FULL
