"""A pipeline declaring capture at every layer, snapshotted into the test store and loaded back."""

from __future__ import annotations

from typing import Annotated

from zenml import pipeline, step

from zenml_serving.capture import Capture, CapturedOutput


@step(extra={"serving_capture": {"inputs": {"city": "full"}, "outputs": "metadata"}})
def lookup(
    city: str, api_token: Annotated[str, Capture("none")]
) -> Annotated[str, CapturedOutput(name="forecast", capture="full")]:
    """Step-level per-value entries, an input hint and an output hint."""
    return f"sunny in {city} ({len(api_token)})"


@step(extra={"serving_capture": {"mode": "errors_only"}})
def render(
    forecast: str,
) -> tuple[Annotated[str, CapturedOutput(name="text", capture="none")], Annotated[int, "length"]]:
    """A step with its own mode and two outputs, one hinted."""
    return forecast.upper(), len(forecast)


@pipeline(extra={"serving_capture": {"mode": "sampled", "sample_rate": 0.25, "max_bytes": 512}})
def captured_pipeline(city: str = "Paris", api_token: str = "t0k3n") -> str:
    """lookup -> render."""
    text, _ = render(lookup(city=city, api_token=api_token))
    return text
