"""What the per-invocation step context costs a served step (`get_step_context()` support).

    .venv/bin/python bench/step_context.py            # ~20 s
    .venv/bin/python bench/step_context.py --repeats 5

Measured in-process, single thread, pinned to core 0 when `taskset` allows (no HTTP: the cost
sits on the worker thread, per step):

1. **context**: building a `ServedStepContext` for one step and entering/leaving it (the
   `ContextVar` set/reset), alone.
2. **engine, per step**: `DirectExecutionEngine.run` on a 10-step chain of trivial steps, with
   the step context (as served) and with the context bypassed (the engine before this
   feature), A and B alternating; the difference divided by 10 is the added cost per step.
3. **get_step_context()**: a step reading `get_step_context().pipeline_state`.

Each figure is the median of `--repeats` runs of `timeit` (min-max given).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.builders import param, pipeline_of, step_of, upstream
from zenml import get_step_context

from zenml_serving.engine import engine as engine_module
from zenml_serving.engine.context import ServedRun, ServedStepContext
from zenml_serving.engine.engine import DirectExecutionEngine
from zenml_serving.engine.versions import ServedVersion, ServedVersions

STEPS = 10


def passthrough(text: str) -> str:
    return text


def reads_state(text: str) -> str:
    return f"{get_step_context().pipeline_state}{text}"


def chain(function: Any) -> Any:
    steps = [step_of(function, name="s0", text=param("text"))]
    steps += [step_of(function, name=f"s{i}", text=upstream(f"s{i - 1}")) for i in range(1, STEPS)]
    return pipeline_of(*steps, parameters={"text": (str, ...)})


class _NoContext:
    """Stands in for ServedStepContext: what the engine did before (nothing per step)."""

    logged_metadata: dict[str, Any] = {}  # noqa: RUF012 - read only

    def __init__(self, **_: Any) -> None:
        pass

    def __enter__(self) -> _NoContext:
        return self

    def __exit__(self, *_: object) -> None:
        pass


def measure(statement: Any, number: int, repeats: int) -> list[float]:
    """Microseconds per call, one figure per repeat."""
    timer = timeit.Timer(statement)
    return [timer.timeit(number) / number * 1e6 for _ in range(repeats)]


def summary(samples: list[float]) -> str:
    return f"{statistics.median(samples):.2f} us (min {min(samples):.2f}, max {max(samples):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {0})

    pipeline = chain(passthrough)
    versions = ServedVersions(ServedVersion(pipeline, state="state"))
    engine = DirectExecutionEngine(versions)
    run = ServedRun(
        id=__import__("uuid").uuid4(),
        name="bench",
        pipeline_name=pipeline.name,
        snapshot_id=pipeline.snapshot_id,
        recorded=False,
    )
    step = pipeline.steps[0]

    def one_context() -> None:
        with ServedStepContext(run=run, step=step, pipeline=pipeline, state="state"):
            pass

    context_cost = measure(one_context, 100_000, args.repeats)

    def invoke() -> None:
        engine.run({"text": "x"})

    with_context: list[float] = []
    without_context: list[float] = []
    original = engine_module.ServedStepContext
    for _ in range(args.repeats):
        with_context += measure(invoke, 20_000, 1)
        engine_module.ServedStepContext = _NoContext  # type: ignore[misc,assignment]
        try:
            without_context += measure(invoke, 20_000, 1)
        finally:
            engine_module.ServedStepContext = original  # type: ignore[misc]
    per_step = [(a - b) / STEPS for a, b in zip(with_context, without_context, strict=True)]

    reading = DirectExecutionEngine(ServedVersions(ServedVersion(chain(reads_state), state="")))
    read_cost = measure(lambda: reading.run({"text": "x"}), 20_000, args.repeats)

    print(f"context build + enter + exit, one step: {summary(context_cost)}")
    print(f"engine.run, {STEPS} steps, with the context: {summary(with_context)}")
    print(f"engine.run, {STEPS} steps, no context:      {summary(without_context)}")
    print(f"added per step (paired difference / {STEPS}): {summary(per_step)}")
    print(
        f"engine.run, {STEPS} steps each reading get_step_context().pipeline_state: "
        f"{summary(read_cost)}"
    )


if __name__ == "__main__":
    main()
