"""Build real `ServedPipeline` / `ServedStep` objects around plain functions, for plan tests."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import pydantic

from zenml_serving.capture import (
    Capture,
    CaptureDefaults,
    CaptureMode,
    CapturePlan,
    InvocationCapture,
    build_capture_plan,
)
from zenml_serving.deployment.model import FromParameter, ServedPipeline, ServedStep


def served_step(
    name: str,
    function: Callable[..., Any],
    capture: Mapping[str, Any] | None = None,
    outputs: tuple[str, ...] = ("output",),
) -> ServedStep:
    """A step whose inputs are the function's parameters."""
    inputs = {arg: FromParameter(arg) for arg in inspect.signature(function).parameters}
    return ServedStep(
        name=name,
        function=function,
        inputs=inputs,
        outputs=outputs,
        upstream=(),
        capture=dict(capture or {}),
    )


def served_pipeline(
    *steps: ServedStep, capture: Mapping[str, Any] | None = None, name: str = "text_pipeline"
) -> ServedPipeline:
    return ServedPipeline(
        name=name,
        snapshot_id=uuid.UUID(int=0),
        steps=tuple(steps),
        parameters_model=pydantic.create_model("Parameters"),
        outputs=(),
        capture=dict(capture or {}),
    )


def plan_for(
    *steps: ServedStep, capture: Mapping[str, Any] | None = None, **defaults: Any
) -> CapturePlan:
    return build_capture_plan(served_pipeline(*steps, capture=capture), CaptureDefaults(**defaults))


def with_input_hint(mode: CaptureMode | None) -> Callable[..., Any]:
    """A one-input function whose input carries `Capture(mode)` (or no hint)."""

    def step(text: str) -> str:
        return text

    annotation: Any = str if mode is None else Annotated[str, Capture(mode)]
    step.__annotations__ = {"text": annotation, "return": str}
    return step


def with_output_hint(mode: CaptureMode | None) -> Callable[..., Any]:
    """A one-output function whose output `answer` carries `CapturedOutput(capture=mode)`."""
    from zenml_serving.capture import CapturedOutput

    def step(text: str) -> str:
        return text

    annotation: Any = (
        Annotated[str, "answer"]
        if mode is None
        else Annotated[str, CapturedOutput(name="answer", capture=mode)]
    )
    step.__annotations__ = {"text": str, "return": annotation}
    return step


def echo(text: str) -> str:
    """A plain one-input, one-output step."""
    return text


SAMPLED_ID = "inv-sampled"
UNSAMPLED_ID = "inv-unsampled"


def ids_for_rate(rate: float) -> tuple[str, str]:
    """(an id sampled at `rate`, an id not sampled at `rate`)."""
    from zenml_serving.capture import is_sampled

    sampled = next(f"inv-{i}" for i in range(10_000) if is_sampled(f"inv-{i}", rate))
    unsampled = next(f"inv-{i}" for i in range(10_000) if not is_sampled(f"inv-{i}", rate))
    return sampled, unsampled


def resolve(plan: CapturePlan, override: Mapping[str, Any] | None = None) -> InvocationCapture:
    return plan.resolve("inv-1", override)
