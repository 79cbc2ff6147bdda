"""A pipeline with integer and boolean parameters that fails on request (ZenML's client tests)."""

from __future__ import annotations

from zenml import pipeline, step


@step
def scale(x: int, double: bool, fail: bool) -> int:
    """`x`, doubled if asked; raises if `fail`."""
    if fail:
        raise ValueError("asked to fail")
    return x * 2 if double else x


@pipeline
def arithmetic(x: int = 1, double: bool = False, fail: bool = False) -> int:
    """One step: scale `x`."""
    return scale(x=x, double=double, fail=fail)
