"""Shared helpers for the observability tests: a tiny served pipeline and span utilities."""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Any

import pydantic
from prometheus_client.parser import text_string_to_metric_families

from zenml_serving.deployment.model import (
    FromParameter,
    FromStepOutput,
    PipelineOutput,
    ServedPipeline,
    ServedStep,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from opentelemetry.sdk.trace import ReadableSpan

CANARY = "canary-s3cr3t-4f1d"
"""A value that must never appear in any exported span attribute or log line."""


class Parameters(pydantic.BaseModel):
    """Parameters of the test pipeline."""

    model_config = pydantic.ConfigDict(extra="forbid")

    text: str = "hello"
    api_key: str = "none"
    fail: bool = False


def _clean(text: str, api_key: str) -> dict[str, str]:
    return {"text": text.strip(), "api_key": api_key}


def _shout(data: dict[str, str], fail: bool) -> str:
    if fail:
        raise ValueError(f"refusing {data['text']}")
    return data["text"].upper()


def served_pipeline(capture: Mapping[str, Any] | None = None) -> ServedPipeline:
    """clean(text, api_key) -> shout(data, fail): two steps, one secret-named input."""
    return ServedPipeline(
        name="obs_pipeline",
        snapshot_id=uuid.UUID(int=7),
        steps=(
            ServedStep(
                name="clean",
                function=_clean,
                inputs={"text": FromParameter("text"), "api_key": FromParameter("api_key")},
                outputs=("output",),
                upstream=(),
            ),
            ServedStep(
                name="shout",
                function=_shout,
                inputs={"data": FromStepOutput("clean", "output"), "fail": FromParameter("fail")},
                outputs=("output",),
                upstream=("clean",),
            ),
        ),
        parameters_model=Parameters,
        outputs=(PipelineOutput(name="result", step="shout", output="output"),),
        capture=dict(capture or {}),
    )


def by_name(spans: Any) -> dict[str, ReadableSpan]:
    """Finished spans by name (the last one wins)."""
    return {span.name: span for span in spans}


def all_attribute_text(spans: Any) -> str:
    """Every attribute, event attribute, link attribute and status of `spans` as one text."""
    parts: list[str] = []
    for span in spans:
        parts.append(repr(dict(span.attributes or {})))
        parts.extend(repr(dict(e.attributes or {})) for e in span.events)
        parts.extend(repr(dict(link.attributes or {})) for link in span.links)
        parts.append(str(span.status.description))
    return "\n".join(parts)


def _wait(gate: threading.Event) -> str:
    if not gate.wait(30):
        raise TimeoutError("the test never opened the gate")
    return "opened"


def gated_pipeline(gate: threading.Event) -> ServedPipeline:
    """One step that blocks until `gate` is set (holds an execution slot on demand)."""
    return ServedPipeline(
        name="gated_pipeline",
        snapshot_id=uuid.UUID(int=8),
        steps=(
            ServedStep(
                name="wait",
                function=lambda: _wait(gate),
                inputs={},
                outputs=("output",),
                upstream=(),
            ),
        ),
        parameters_model=NoParameters,
        outputs=(PipelineOutput(name="result", step="wait", output="output"),),
    )


class NoParameters(pydantic.BaseModel):
    """A pipeline without parameters."""

    model_config = pydantic.ConfigDict(extra="forbid")


def sample(body: str, name: str, **labels: str) -> float:
    """The sum of the samples `name` with `labels` in a Prometheus text exposition (0 if none)."""
    return sum(
        float(s.value)
        for family in text_string_to_metric_families(body)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )
