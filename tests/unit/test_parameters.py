"""The request-parameter model follows the pipeline signature and the snapshot's values."""

from __future__ import annotations

import pydantic
import pytest

from zenml_serving.deployment.parameters import build_parameters_model


def pipeline_function(
    question: str, temperature: float = 0.5, tags: list[str] | None = None
) -> None:
    """A pipeline signature: one required parameter, two with defaults."""


class TestParametersModel:
    """Validation is strict where a typo would otherwise silently fall back to a default."""

    model = build_parameters_model(
        "my-pipeline", pipeline_function, {"question": "snap", "temperature": 0.9}
    )

    def test_snapshot_values_are_the_defaults_of_optional_parameters(self) -> None:
        assert self.model(question="q").temperature == 0.9

    def test_a_parameter_without_default_stays_required(self) -> None:
        with pytest.raises(pydantic.ValidationError) as raised:
            self.model()
        assert raised.value.errors()[0]["loc"] == ("question",)

    def test_unknown_parameters_are_rejected(self) -> None:
        with pytest.raises(pydantic.ValidationError) as raised:
            self.model(question="q", temprature=1)
        assert raised.value.errors()[0]["loc"] == ("temprature",)

    def test_types_are_checked(self) -> None:
        with pytest.raises(pydantic.ValidationError):
            self.model(question="q", tags="not-a-list")

    @pytest.mark.parametrize(
        ("values", "field"),
        [
            ({"question": 1}, ("question",)),
            ({"question": "q", "temperature": "0.5"}, ("temperature",)),
            ({"question": "q", "temperature": True}, ("temperature",)),
            ({"question": "q", "tags": ["a", 1]}, ("tags", 1)),
        ],
    )
    def test_json_types_are_not_coerced(self, values: dict[str, object], field: tuple) -> None:
        # found by schemathesis: lax pydantic took "0.5" for a float and false for a number
        with pytest.raises(pydantic.ValidationError) as raised:
            self.model(**values)
        assert raised.value.errors()[0]["loc"] == field

    def test_an_int_is_still_a_float(self) -> None:
        assert self.model(question="q", temperature=1).temperature == 1.0

    def test_schema_shows_types_defaults_and_required(self) -> None:
        schema = self.model.model_json_schema()
        assert schema["title"] == "MyPipelineParameters"
        assert schema["required"] == ["question"]
        assert schema["properties"]["temperature"] == {
            "default": 0.9,
            "title": "Temperature",
            "type": "number",
        }
        assert schema["properties"]["question"]["examples"] == ["snap"]
        assert schema["additionalProperties"] is False
