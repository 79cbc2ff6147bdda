"""A fan-out/fan-in pipeline: one input feeds three branches that are joined at the end."""

from __future__ import annotations

from zenml import pipeline, step


@step
def load_numbers(numbers: list[int]) -> list[int]:
    """Validate and pass on the input."""
    return [int(n) for n in numbers]


@step
def total(values: list[int]) -> int:
    """Branch 1: the sum."""
    return sum(values)


@step
def largest(values: list[int]) -> int:
    """Branch 2: the maximum (0 for no numbers)."""
    return max(values, default=0)


@step
def scaled(values: list[int], factor: float) -> list[float]:
    """Branch 3: every value times `factor`."""
    return [v * factor for v in values]


@step
def combine(total: int, largest: int, scaled: list[float]) -> dict[str, object]:
    """Fan-in: join the three branches."""
    return {"total": total, "largest": largest, "scaled": scaled}


@pipeline
def fan_out_pipeline(numbers: list[int] = [1, 2, 3], factor: float = 0.5) -> dict[str, object]:  # noqa: B006 - ZenML stores the default
    """load -> (total | largest | scaled) -> combine."""
    values = load_numbers(numbers=numbers)
    return combine(total=total(values), largest=largest(values), scaled=scaled(values, factor))
