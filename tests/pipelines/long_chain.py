"""A chain of 50 trivial steps: many events per job (for stream benchmarks and tests)."""

from __future__ import annotations

from zenml import pipeline, step


@step
def increment(value: int) -> int:
    """One more."""
    return value + 1


@pipeline
def long_chain_pipeline(start: int = 0) -> int:
    """start -> +1 fifty times."""
    value = increment(value=start)
    for index in range(49):
        value = increment(value=value, id=f"increment_{index + 2}")
    return value
