"""Pipelines of different shapes for the capture property test (`test_capture_property.py`).

Every step returns `token(step, *inputs)`, a value that never contains its inputs, so each value
that flows through a run (a parameter, a step output) is a canary of its own that the test can
follow. A step fails when one of its inputs contains `boom-<step name>`, with a message that
quotes its inputs (as real error messages do).

`HINTS` lists the capture hints written in the annotations, `SHAPES` what the test needs.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from zenml import pipeline, step

from zenml_serving.capture import Capture, CapturedOutput


def token(step_name: str, *values: str) -> str:
    """The output of `step_name` for `values`: a fresh canary that holds none of them."""
    digest = hashlib.sha256("|".join((step_name, *values)).encode()).hexdigest()
    return "tok" + "".join(chr(ord("a") + int(c, 16)) for c in digest[:16])


def _check(step_name: str, *values: str) -> None:
    if any(f"boom-{step_name}" in value for value in values):
        raise ValueError(f"{step_name} refuses {values!r}")


@step
def first(a: str, b: str) -> str:
    """Two parameters in."""
    _check("first", a, b)
    return token("first", a, b)


@step
def second(x: str, memo: str) -> str:
    """An upstream output and, under another name, a parameter `first` also gets."""
    _check("second", x, memo)
    return token("second", x, memo)


@step
def third(
    y: str, note: Annotated[str, Capture("none")]
) -> Annotated[str, CapturedOutput(name="final", capture="metadata")]:
    """A `Capture("none")` input and a `CapturedOutput(capture="metadata")` output."""
    _check("third", y, note)
    return token("third", y, note)


@pipeline
def relay(alpha: str = "alpha", beta: str = "beta", gamma: str = "gamma") -> str:
    """first(alpha, beta) -> second(x, memo=alpha) -> third(y, note=gamma)."""
    return third(y=second(x=first(a=alpha, b=beta), memo=alpha), note=gamma)


@step
def left(topic: str, extra: str) -> str:
    """One of two parallel steps."""
    _check("left", topic, extra)
    return token("left", topic, extra)


@step(extra={"serving_capture": {"inputs": {"memo": "none"}}})
def right(memo: str) -> str:
    """Declares its input `none` in the step's own `extra`."""
    _check("right", memo)
    return token("right", memo)


@step
def join(lhs: str, rhs: str) -> tuple[Annotated[str, "summary"], Annotated[str, "detail"]]:
    """Two outputs."""
    _check("join", lhs, rhs)
    return token("join", lhs, rhs, "summary"), token("join", lhs, rhs, "detail")


@pipeline
def split(topic: str = "topic", extra: str = "extra") -> tuple[str, str]:
    """left(topic, extra) and right(memo=topic) -> join: one parameter, two inputs."""
    summary, detail = join(lhs=left(topic=topic, extra=extra), rhs=right(memo=topic))
    return summary, detail


HINTS: dict[tuple[str, str, str], str] = {
    ("third", "input", "note"): "none",
    ("third", "output", "final"): "metadata",
}
"""(step, input|output, name) -> the mode its annotation declares."""

SHAPES = {
    "relay": "tests.pipelines.capture_shapes:relay",
    "split": "tests.pipelines.capture_shapes:split",
}
