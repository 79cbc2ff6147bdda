"""Micro-benchmark: what resolving the capture decision costs one invocation (request path).

    .venv/bin/python bench/capture_resolve.py [--steps 5] [--number 200000]

Builds a plan for a chain of `--steps` one-input steps fed by parameters (a `Capture("none")`
hint on every other step, a pipeline `sampled` mode at rate 0.5 so both sampling outcomes
occur) and times `CapturePlan.resolve` on fresh invocation ids, and `run_parameters` on the
resolved object (what the invocation span does once). Prints microseconds per call.
"""

from __future__ import annotations

import argparse
import timeit
import uuid
from typing import Annotated, Any

import pydantic

from zenml_serving.capture import Capture, CaptureDefaults, build_capture_plan
from zenml_serving.deployment.model import (
    FromParameter,
    PipelineOutput,
    ServedPipeline,
    ServedStep,
)


def _step(index: int) -> ServedStep:
    def function(text: str) -> str:
        return text

    hint: Any = Annotated[str, Capture("none")] if index % 2 else str
    function.__annotations__ = {"text": hint, "return": str}
    return ServedStep(
        name=f"s{index}",
        function=function,
        inputs={"text": FromParameter(f"p{index}")},
        outputs=("output",),
        upstream=(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--number", type=int, default=200_000)
    args = parser.parse_args()
    steps = tuple(_step(i) for i in range(args.steps))
    pipeline = ServedPipeline(
        name="bench",
        snapshot_id=uuid.UUID(int=0),
        steps=steps,
        parameters_model=pydantic.create_model("Parameters"),
        outputs=(PipelineOutput(name="out", step=steps[-1].name, output="output"),),
        capture={"mode": "sampled", "sample_rate": 0.5},
    )
    plan = build_capture_plan(pipeline, CaptureDefaults())
    ids = [str(uuid.uuid4()) for _ in range(args.number)]
    calls = iter(ids)
    resolve = timeit.timeit(lambda: plan.resolve(next(calls)), number=args.number)
    print(f"resolve, {args.steps} steps: {resolve / args.number * 1e6:.2f} us per invocation")
    capture = next(c for c in map(plan.resolve, ids) if c.run_payloads())
    parameters = {f"p{i}": "value" for i in range(args.steps)}
    if hasattr(capture, "run_parameters"):
        filtered = timeit.timeit(lambda: capture.run_parameters(parameters), number=args.number)
        print(f"run_parameters, {args.steps} parameters: {filtered / args.number * 1e6:.2f} us")


if __name__ == "__main__":
    main()
