"""A step with several outputs feeding different steps, and a pydantic model output."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel
from zenml import pipeline, step


class Report(BaseModel):
    """A typed pipeline output."""

    title: str
    mean: float
    spread: float
    count: int


@step
def describe(
    values: list[float],
) -> tuple[Annotated[float, "mean"], Annotated[float, "spread"], Annotated[int, "count"]]:
    """Three outputs from one step."""
    if not values:
        return 0.0, 0.0, 0
    mean = sum(values) / len(values)
    return round(mean, 6), max(values) - min(values), len(values)


@step
def make_report(title: str, mean: float, spread: float, count: int) -> Report:
    """A pydantic model built from the outputs."""
    return Report(title=title, mean=mean, spread=spread, count=count)


@step
def spread_alert(spread: float, limit: float) -> Annotated[dict[str, object], "alert"]:
    """Uses only one of `describe`'s outputs."""
    return {"alert": spread > limit, "spread": spread, "limit": limit}


@pipeline
def multi_output_pipeline(
    values: list[float] = [1.0, 2.0, 4.0],  # noqa: B006 - ZenML stores the default
    title: str = "report",
    limit: float = 2.5,
) -> tuple[Annotated[Report, "report"], Annotated[dict[str, object], "alert"]]:
    """describe -> (make_report, spread_alert)."""
    mean, spread, count = describe(values=values)
    report = make_report(title=title, mean=mean, spread=spread, count=count)
    alert = spread_alert(spread=spread, limit=limit)
    return report, alert
