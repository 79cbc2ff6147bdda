"""A `serving_capture` declaration is validated in full; every error says where, what and why."""

from __future__ import annotations

from typing import Any

import pytest

from zenml_serving.capture import CaptureConfigError, CaptureDeclaration, CaptureMode
from zenml_serving.capture.policy import DECLARATION_KEYS, parse_declaration
from zenml_serving.config import CAPTURE_MODES

STEP = "step 'score'"
ALL_MODES = "full, sampled, errors_only, metadata, none"


def parse(raw: Any, **kwargs: Any) -> CaptureDeclaration:
    return parse_declaration(raw, where=STEP, **kwargs)


class TestCaptureMode:
    """The five modes are the ones the environment variables accept."""

    def test_modes_match_the_service_configuration(self) -> None:
        assert tuple(m.value for m in CaptureMode) == CAPTURE_MODES

    def test_a_mode_prints_as_its_value(self) -> None:
        assert str(CaptureMode.ERRORS_ONLY) == "errors_only"
        assert f"{CaptureMode.NONE}" == "none"


class TestValidDeclarations:
    """Every documented key is accepted and normalised."""

    def test_nothing_declared_is_an_empty_declaration(self) -> None:
        assert parse(None).is_empty
        assert parse({}).is_empty
        assert parse({"mode": None}).is_empty

    def test_every_key_at_once(self) -> None:
        declaration = parse(
            {
                "mode": "Sampled",
                "sample_rate": 0.25,
                "inputs": {"city": "full", "token": "none"},
                "outputs": {"answer": "metadata"},
                "artifacts": "errors_only",
                "max_bytes": 1024,
                "redact": ["SSN", " iban ", "ssn"],
            },
            inputs=["city", "token"],
            outputs=["answer"],
        )
        assert declaration.mode is CaptureMode.SAMPLED
        assert declaration.sample_rate == 0.25
        assert dict(declaration.inputs) == {"city": CaptureMode.FULL, "token": CaptureMode.NONE}
        assert declaration.output_mode("answer") is CaptureMode.METADATA
        assert declaration.artifacts is CaptureMode.ERRORS_ONLY
        assert declaration.max_bytes == 1024
        assert declaration.redact == ("ssn", "iban")

    def test_outputs_as_one_mode_applies_to_every_output(self) -> None:
        declaration = parse({"outputs": "none"}, outputs=["a", "b"])
        assert declaration.output_mode("a") is CaptureMode.NONE
        assert declaration.output_mode("b") is CaptureMode.NONE

    def test_integer_sample_rates_are_accepted(self) -> None:
        assert parse({"sample_rate": 0}).sample_rate == 0.0
        assert parse({"sample_rate": 1}).sample_rate == 1.0

    def test_per_value_names_are_not_checked_without_the_step_signature(self) -> None:
        assert dict(parse({"inputs": {"anything": "none"}}).inputs) == {
            "anything": CaptureMode.NONE
        }

    def test_the_parsed_declaration_cannot_be_changed(self) -> None:
        declaration = parse({"inputs": {"city": "full"}})
        with pytest.raises(TypeError):
            declaration.inputs["city"] = CaptureMode.NONE  # type: ignore[index]


class TestDeclarationErrors:
    """A bad declaration stops startup with a message naming the step, key, value and choices."""

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ({"mode": "fulll"}, ["'mode'", "'fulll'", ALL_MODES]),
            ({"mode": 3}, ["'mode'", "= 3", ALL_MODES]),
            ({"moed": "full"}, ["'moed'", "not a known key", ", ".join(DECLARATION_KEYS)]),
            ({"sample_rate": 1.5}, ["'sample_rate'", "1.5", "a number from 0 to 1"]),
            ({"sample_rate": -0.1}, ["'sample_rate'", "-0.1", "0 to 1"]),
            ({"sample_rate": True}, ["'sample_rate'", "True", "0 to 1"]),
            ({"sample_rate": "0.5"}, ["'sample_rate'", "'0.5'", "0 to 1"]),
            ({"sample_rate": float("nan")}, ["'sample_rate'", "nan", "0 to 1"]),
            ({"inputs": ["city"]}, ["'inputs'", "['city']", "mapping of input name to mode"]),
            ({"inputs": {"city": "ful"}}, ["'inputs'['city']", "'ful'", ALL_MODES]),
            ({"outputs": "everything"}, ["'outputs'", "'everything'", ALL_MODES]),
            ({"outputs": 3}, ["'outputs'", "3", "a mode for every output or a mapping"]),
            ({"outputs": {"answer": None}}, ["'outputs'['answer']", "None", ALL_MODES]),
            ({"artifacts": "always"}, ["'artifacts'", "'always'", ALL_MODES]),
            ({"max_bytes": 0}, ["'max_bytes'", "0", "an integer > 0"]),
            ({"max_bytes": 10.5}, ["'max_bytes'", "10.5", "an integer > 0"]),
            ({"max_bytes": True}, ["'max_bytes'", "True", "an integer > 0"]),
            ({"redact": "ssn"}, ["'redact'", "'ssn'", "a list of field names"]),
            ({"redact": ["ssn", ""]}, ["'redact'", "''", "a list of field names"]),
            ({"redact": [1]}, ["'redact'", "1", "a list of field names"]),
            (["mode", "full"], ["declaration", "not a mapping"]),
        ],
    )
    def test_message_names_step_key_value_and_allowed(self, raw: Any, expected: list[str]) -> None:
        with pytest.raises(CaptureConfigError) as caught:
            parse(raw)
        message = str(caught.value)
        assert message.startswith("step 'score': serving_capture ")
        for fragment in expected:
            assert fragment in message
        assert caught.value.where == STEP

    def test_an_unknown_input_name_is_named_with_the_real_inputs(self) -> None:
        with pytest.raises(CaptureConfigError) as caught:
            parse({"inputs": {"tokn": "none"}}, inputs=["city", "token"])
        assert str(caught.value) == (
            "step 'score': serving_capture 'inputs' names 'tokn', which is not an input of "
            "step 'score'; allowed: city, token"
        )

    def test_an_unknown_output_name_is_named_with_the_real_outputs(self) -> None:
        with pytest.raises(CaptureConfigError) as caught:
            parse({"outputs": {"anser": "none"}}, outputs=["answer"])
        assert "names 'anser', which is not an output of step 'score'" in str(caught.value)
        assert "allowed: answer" in str(caught.value)

    def test_a_step_without_inputs_says_so(self) -> None:
        with pytest.raises(CaptureConfigError, match="allowed: nothing: there are no inputs"):
            parse({"inputs": {"x": "none"}}, inputs=[])

    def test_the_error_is_a_value_error(self) -> None:
        with pytest.raises(ValueError, match="serving_capture"):
            parse({"mode": "all"})
