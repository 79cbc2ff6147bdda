"""Build ServedPipelines from plain Python functions, for tests that need no ZenML store."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any
from uuid import uuid4

import pydantic

from zenml_serving.deployment.model import (
    FromLiteral,
    FromParameter,
    FromStepOutput,
    InputBinding,
    PipelineOutput,
    RetryPolicy,
    ServedPipeline,
    ServedStep,
)

__all__ = ["literal", "param", "pipeline_of", "step_of", "upstream"]


def param(name: str) -> FromParameter:
    """Bind to pipeline parameter `name`."""
    return FromParameter(name)


def literal(value: Any) -> FromLiteral:
    """Bind to a fixed value."""
    return FromLiteral(value)


def upstream(step: str, output: str = "output") -> FromStepOutput:
    """Bind to an upstream step's output."""
    return FromStepOutput(step, output)


def step_of(
    function: Callable[..., Any],
    name: str | None = None,
    *,
    outputs: tuple[str, ...] = ("output",),
    retry: RetryPolicy | None = None,
    on_failure: Callable[..., Any] | None = None,
    on_success: Callable[..., Any] | None = None,
    capture: Mapping[str, Any] | None = None,
    **inputs: InputBinding,
) -> ServedStep:
    """A ServedStep calling `function` with `inputs`."""
    parents = sorted({b.step for b in inputs.values() if isinstance(b, FromStepOutput)})
    hints = {n: p.annotation for n, p in inspect.signature(function).parameters.items()}
    return ServedStep(
        name=name or function.__name__,
        function=function,
        inputs=inputs,
        outputs=outputs,
        upstream=tuple(parents),
        retry=retry,
        on_failure=on_failure,
        on_success=on_success,
        capture=dict(capture or {}),
        input_annotations=hints,
        source=f"tests.{function.__name__}",
    )


def pipeline_of(
    *steps: ServedStep,
    parameters: Mapping[str, tuple[Any, Any]] | None = None,
    outputs: Mapping[str, tuple[str, str]] | None = None,
    name: str = "test_pipeline",
    capture: Mapping[str, Any] | None = None,
) -> ServedPipeline:
    """A ServedPipeline: `parameters` maps name -> (type, default or ...)."""
    fields: dict[str, Any] = {n: (t, d) for n, (t, d) in (parameters or {}).items()}
    model = pydantic.create_model(
        "TestParameters", __config__=pydantic.ConfigDict(extra="forbid"), **fields
    )
    last = steps[-1]
    mapped = outputs or {o: (last.name, o) for o in last.outputs}
    return ServedPipeline(
        name=name,
        snapshot_id=uuid4(),
        steps=steps,
        parameters_model=model,
        outputs=tuple(PipelineOutput(n, s, o) for n, (s, o) in mapped.items()),
        capture=dict(capture or {}),
    )
