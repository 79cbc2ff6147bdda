"""The capture hook point: decisions per mode, the fallback decider, the one payload helper."""

from __future__ import annotations

import json
from typing import Annotated, Any

import pytest

from tests.telemetry_support import CANARY, served_pipeline
from zenml_serving.deployment.model import FromParameter, ServedStep
from zenml_serving.execution.invocation import Invocation
from zenml_serving.telemetry.capture import (
    FallbackCaptureDecider,
    ModeDecision,
    metadata_attributes,
    payload_attributes,
    preview,
)
from zenml_serving.telemetry.redaction import REDACTED, default_redact


def _invocation(override: dict[str, Any] | None = None, id_: str = "inv-1") -> Invocation:
    return Invocation(id=id_, parameters={}, capture_override=override)


class TestModeDecision:
    """What each mode lets telemetry record."""

    @pytest.mark.parametrize(
        ("mode", "anything", "payload", "payload_on_failure"),
        [
            ("full", True, True, True),
            ("errors_only", True, False, True),
            ("metadata", True, False, False),
            ("none", False, False, False),
        ],
    )
    def test_modes(
        self, mode: str, anything: bool, payload: bool, payload_on_failure: bool
    ) -> None:
        decision = ModeDecision(mode)
        assert decision.records_anything() is anything
        assert decision.allows_payload("s", "input", "x") is payload
        assert decision.allows_payload("s", "input", "x", failed=True) is payload_on_failure

    def test_step_mode_and_restricted_steps(self) -> None:
        decision = ModeDecision("full", {"quiet": "none"}, frozenset({"private"}))
        assert decision.records_anything()
        assert not decision.records_anything("quiet")
        assert not decision.allows_payload("quiet", "output", "x")
        assert not decision.allows_payload("private", "input", "x")
        assert decision.allows_payload("other", "input", "x")


class TestFallbackDecider:
    """Precedence as the spec says, sampling deterministic, declarations fail closed."""

    def test_service_default(self) -> None:
        decide = FallbackCaptureDecider(served_pipeline(), default_mode="metadata", sample_rate=1)
        assert decide(_invocation()).allows_payload("clean", "input", "text") is False

    def test_request_override_beats_pipeline_which_beats_default(self) -> None:
        pipeline = served_pipeline(capture={"mode": "none"})
        decide = FallbackCaptureDecider(pipeline, default_mode="full", sample_rate=1)
        assert not decide(_invocation()).records_anything()
        assert decide(_invocation({"mode": "full"})).allows_payload("clean", "input", "text")

    def test_step_mode_beats_request(self) -> None:
        pipeline = served_pipeline()
        steps = (
            ServedStep(**{**_fields(pipeline.steps[0]), "capture": {"mode": "none"}}),
            pipeline.steps[1],
        )
        pipeline = type(pipeline)(**{**pipeline.__dict__, "steps": steps})
        decision = FallbackCaptureDecider(pipeline, default_mode="full", sample_rate=1)(
            _invocation({"mode": "full"})
        )
        assert not decision.records_anything("clean")
        assert decision.allows_payload("shout", "input", "data")

    def test_sampling_is_deterministic_and_matches_the_rate(self) -> None:
        decide = FallbackCaptureDecider(served_pipeline(), default_mode="sampled", sample_rate=0.3)
        sampled = [
            decide(_invocation(id_=f"id-{i}")).allows_payload("clean", "input", "text")
            for i in range(4000)
        ]
        again = [
            decide(_invocation(id_=f"id-{i}")).allows_payload("clean", "input", "text")
            for i in range(4000)
        ]
        assert sampled == again
        assert 0.26 < sum(sampled) / len(sampled) < 0.34

    def test_per_value_declarations_make_a_step_payload_free(self) -> None:
        pipeline = served_pipeline()
        declared = ServedStep(
            **{**_fields(pipeline.steps[0]), "capture": {"inputs": {"text": "full"}}}
        )
        annotated = ServedStep(
            **{
                **_fields(pipeline.steps[1]),
                "input_annotations": {"data": Annotated[dict, object()]},
            }
        )
        pipeline = type(pipeline)(**{**pipeline.__dict__, "steps": (declared, annotated)})
        decision = FallbackCaptureDecider(pipeline, default_mode="full", sample_rate=1)(
            _invocation()
        )
        assert not decision.allows_payload("clean", "input", "text")
        assert not decision.allows_payload("shout", "input", "data")
        assert decision.records_anything("clean")

    def test_output_names_alone_are_not_declarations(self) -> None:
        def named() -> Annotated[str, "answer"]:
            return "x"

        step = ServedStep(
            name="named",
            function=named,
            inputs={"text": FromParameter("text")},
            outputs=("answer",),
            upstream=(),
        )
        pipeline = served_pipeline()
        pipeline = type(pipeline)(**{**pipeline.__dict__, "steps": (step,)})
        decision = FallbackCaptureDecider(pipeline, default_mode="full", sample_rate=1)(
            _invocation()
        )
        assert decision.allows_payload("named", "output", "answer")


def _fields(step: ServedStep) -> dict[str, Any]:
    return {name: getattr(step, name) for name in step.__slots__}  # type: ignore[attr-defined]


class TestPayloadHelper:
    """Previews only where allowed, always redacted, cut without splitting characters."""

    def test_only_allowed_values(self) -> None:
        values = {"text": "hi", "api_key": CANARY}
        full = payload_attributes(
            ModeDecision("full"),
            step="s",
            direction="input",
            values=values,
            redact=default_redact,
            max_bytes=100,
        )
        assert full == {
            "zenml.step.input.text": '"hi"',
            "zenml.step.input.api_key": json.dumps(REDACTED),
        }
        assert not payload_attributes(
            ModeDecision("metadata"),
            step="s",
            direction="input",
            values=values,
            redact=default_redact,
            max_bytes=100,
        )

    def test_nested_secret_inside_a_model(self) -> None:
        text = preview(
            {"user": {"password": CANARY}}, name="x", redact=default_redact, max_bytes=999
        )
        assert CANARY not in text
        assert json.loads(text) == {"user": {"password": REDACTED}}

    def test_truncation_never_splits_a_character(self) -> None:
        text = preview("é" * 100, name="x", redact=default_redact, max_bytes=64)
        head, _, tail = text.partition("...")
        head.encode("utf-8")  # valid text
        assert len(head.encode()) <= 64
        assert tail == "[truncated, 202 bytes]"

    def test_metadata_has_names_types_and_lengths_not_content(self) -> None:
        attributes = metadata_attributes("output", {"words": ["a", "b"], "n": 3})
        assert attributes == {
            "zenml.step.output.names": ("words", "n"),
            "zenml.step.output.types": ("list", "int"),
            "zenml.step.output.lengths": (2, -1),
        }
        assert metadata_attributes("input", {}) == {}
