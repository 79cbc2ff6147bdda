"""Pipeline parameters reach the right step arguments, whatever the names (real snapshots)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import served
from zenml_serving.deployment.loader import DeploymentLoadError
from zenml_serving.deployment.model import FromLiteral, FromParameter, FromStepOutput
from zenml_serving.engine.engine import DirectExecutionEngine

W = "tests.pipelines.wiring:"


def run(target: str, **parameters: Any) -> dict[str, Any]:
    """Validate `parameters` like a request would, run the pipeline, return its outputs."""
    pipeline = served(target)
    model = pipeline.parameters_model.model_validate(parameters)
    values = {name: getattr(model, name) for name in type(model).model_fields}
    return DirectExecutionEngine(pipeline).run(values).outputs


class TestRenamedParameter:
    """`echo(text=raw)`: ZenML's own server answers the default here; we must not."""

    def test_the_request_value_reaches_the_differently_named_argument(self) -> None:
        assert run(W + "renamed_pipeline", raw="from the request") == {"output": "from the request"}

    def test_the_snapshot_default_applies_when_the_request_omits_it(self) -> None:
        assert run(W + "renamed_pipeline") == {"output": "default"}


class TestSharedParameter:
    """One parameter feeds several steps; one step function runs twice; a literal stays fixed."""

    def test_every_consumer_gets_the_request_value(self) -> None:
        assert run(W + "shared_parameter_pipeline", word="hi", count_label="L") == {
            "output": "hi|L:hi|fixed:hi"
        }

    def test_bindings_say_where_each_argument_comes_from(self) -> None:
        steps = {s.name: s for s in served(W + "shared_parameter_pipeline").steps}
        assert steps["echo"].inputs["text"] == FromParameter("word")
        assert steps["tag"].inputs == {
            "text": FromParameter("word"),
            "label": FromParameter("count_label"),
        }
        assert steps["tag_literal"].inputs == {
            "text": FromStepOutput("echo", "output"),
            "label": FromLiteral("fixed"),
        }


class TestMultipleOutputs:
    """A step's several outputs feed different steps."""

    def test_each_output_goes_to_its_consumer(self) -> None:
        assert run(W + "multi_output_wiring_pipeline", sentence="one two three", sep="+") == {
            "output": "one+two three+one"
        }


class TestTypedParameters:
    """Pydantic, int-to-float and bool parameters are validated and converted per step."""

    def test_values_arrive_with_the_step_annotation_types(self) -> None:
        outputs = run(
            W + "typed_pipeline",
            text="ab",
            settings={"prefix": ">", "repeat": 2},
            factor=3,
            flag=True,
        )
        assert outputs == {
            "render.output": ">abab",
            "scale.output": 4.5,
            "show_flag.output": "on",
        }
        assert isinstance(outputs["scale.output"], float)

    def test_a_bool_parameter_is_wired_although_it_has_two_values(self) -> None:
        step = served(W + "typed_pipeline").step("show_flag")
        assert step.inputs["flag"] == FromParameter("flag")


class TestUnservableShapes:
    """Pipelines that cannot be served faithfully are refused at startup, with the reason."""

    def test_a_computed_argument_is_refused(self) -> None:
        with pytest.raises(DeploymentLoadError, match=r"step 'echo' argument 'text' is computed"):
            served(W + "computed_pipeline")

    def test_a_body_that_branches_on_a_parameter_is_refused(self) -> None:
        with pytest.raises(DeploymentLoadError, match=r"branches on the parameter"):
            served(W + "branching_pipeline")


class TestExamples:
    """The bundled examples run with correct outputs."""

    def test_fan_out_and_fan_in(self) -> None:
        assert run("examples.fan_out:fan_out_pipeline", numbers=[4, 1, 7], factor=2) == {
            "output": {"total": 12, "largest": 7, "scaled": [8.0, 2.0, 14.0]}
        }

    def test_multiple_outputs_and_a_pydantic_output(self) -> None:
        outputs = run("examples.multi_output:multi_output_pipeline", values=[1, 3], limit=5)
        report = outputs["output"]
        assert report.mean == 2.0
        assert report.count == 2
        assert outputs["alert"] == {"alert": False, "spread": 2.0, "limit": 5.0}
