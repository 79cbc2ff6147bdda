"""Property: nothing a capture policy withholds reaches any sink; what it records in full does.

Hypothesis draws a pipeline shape (`tests/pipelines/capture_shapes.py`, snapshotted into the
session's real ZenML store), capture declarations for the pipeline and each step (as a
pipeline author writes them in `extra`), the service defaults, a request override, the
parameter values (each one a canary) and maybe a failing step. The service runs the pipeline
in-process with tracking into the store, an in-memory span exporter and logs at DEBUG. Then
every sink is read back: every table of the SQLite store, every file of the artifact store,
every exported span, the rendered log output and /metrics.

The oracle below re-derives the contract (capture-policies.md and the README) on its own; it
does not ask the capture package. Each value that flows through the run (a parameter, a step
output) sits in "slots": the step inputs it feeds, the step output it is, the run-level
parameter or pipeline output it is. A slot shows the value where its effective mode is `full`
for this invocation and outcome and no declared `redact` name matches its name. A run-level
parameter shows only where every step input it feeds shows (the strictest consumer wins).
- A value no slot shows must be absent from every sink.
- A value a recorded step's slot shows must be in the store (and in the step's span); a step
  output it shows, and an input of the failing step it shows, in the artifact store.

30 examples by default (about a minute); `ZENML_SERVING_CAPTURE_EXAMPLES=500` for a longer run.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import logging
import os
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from litestar.testing import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from zenml.client import Client

from tests.integration.conftest import served
from tests.pipelines.capture_shapes import HINTS, SHAPES
from tests.telemetry_support import all_attribute_text
from zenml_serving.app import create_app
from zenml_serving.config import ServingConfig
from zenml_serving.deployment.model import (
    FromParameter,
    FromStepOutput,
    ServedPipeline,
    ServedStep,
)
from zenml_serving.telemetry.service import Telemetry

MODES = ("full", "sampled", "errors_only", "metadata", "none")
REDACTABLE = ("alpha", "memo", "note", "topic", "lhs")
"""Names that appear as a parameter or input name and as no part of another name."""

# --------------------------------------------------------------------------- generation


@st.composite
def declarations(
    draw: st.DrawFn, inputs: tuple[str, ...], outputs: tuple[str, ...]
) -> dict[str, Any]:
    """One `serving_capture` declaration over these value names (consistent, as startup
    requires: a step `mode: none` takes only `none` per-value entries)."""
    declaration: dict[str, Any] = {}
    if draw(st.booleans()):
        declaration["mode"] = draw(st.sampled_from(MODES))
    if draw(st.booleans()):
        declaration["sample_rate"] = draw(st.sampled_from((0.0, 1.0)))
    closed = declaration.get("mode") == "none"
    mode = st.just("none") if closed else st.sampled_from(MODES)
    if inputs:
        per_input = draw(st.dictionaries(st.sampled_from(inputs), mode, max_size=2))
        if per_input:
            declaration["inputs"] = per_input
    if draw(st.booleans()):
        declaration["outputs"] = draw(
            mode | st.dictionaries(st.sampled_from(outputs), mode, min_size=1, max_size=2)
        )
    redact = draw(st.lists(st.sampled_from(REDACTABLE), max_size=1, unique=True))
    if redact:
        declaration["redact"] = redact
    return declaration


def _merge(declared: dict[str, Any], drawn: dict[str, Any]) -> dict[str, Any]:
    """The author's own declaration with the drawn one on top (per-value maps merged)."""
    merged = {**declared, **drawn}
    if isinstance(declared.get("inputs"), dict) and "inputs" in drawn:
        merged["inputs"] = {**declared["inputs"], **drawn["inputs"]}
    if merged.get("mode") == "none":
        merged["inputs"] = dict.fromkeys(merged.get("inputs", {}), "none")
    return merged


@dataclasses.dataclass
class Case:
    """One drawn scenario."""

    shape: str
    pipeline: ServedPipeline
    default_mode: str
    default_rate: float
    service_redact: list[str]
    override: dict[str, Any] | None
    failing: str | None
    metrics: bool
    tracing: bool

    def __repr__(self) -> str:
        steps = {step.name: dict(step.capture) for step in self.pipeline.steps}
        return (
            f"Case({self.shape}, pipeline={dict(self.pipeline.capture)}, steps={steps}, "
            f"default={self.default_mode}@{self.default_rate}, redact={self.service_redact}, "
            f"override={self.override}, failing={self.failing}, "
            f"metrics={self.metrics}, tracing={self.tracing})"
        )


@st.composite
def cases(draw: st.DrawFn) -> Case:
    shape = draw(st.sampled_from(sorted(SHAPES)))
    base = served(SHAPES[shape])
    all_inputs = tuple(sorted({i for s in base.steps for i in s.inputs}))
    all_outputs = tuple(sorted({o for s in base.steps for o in s.outputs}))
    steps = tuple(
        dataclasses.replace(
            step,
            capture=_merge(
                dict(step.capture), draw(declarations(tuple(step.inputs), step.outputs))
            ),
        )
        for step in base.steps
    )
    pipeline = dataclasses.replace(
        base, steps=steps, capture=draw(declarations(all_inputs, all_outputs))
    )
    override: dict[str, Any] | None = None
    if draw(st.booleans()):
        override = {"mode": draw(st.sampled_from(MODES))}
        if draw(st.booleans()):
            override["sample_rate"] = draw(st.sampled_from((0.0, 1.0)))
    can_fail = [
        s.name for s in steps if any(isinstance(b, FromParameter) for b in s.inputs.values())
    ]
    return Case(
        shape=shape,
        pipeline=pipeline,
        default_mode=draw(st.sampled_from(MODES)),
        default_rate=draw(st.sampled_from((0.0, 1.0))),
        service_redact=draw(st.lists(st.sampled_from(REDACTABLE), max_size=1)),
        override=override,
        failing=draw(st.none() | st.sampled_from(can_fail)),
        metrics=draw(st.booleans()),
        tracing=draw(st.booleans()),
    )


# --------------------------------------------------------------------------- the oracle


def _concrete(mode: str, *, sampled: bool, failed: bool) -> str:
    if mode == "sampled":
        return "full" if sampled else "metadata"
    if mode == "errors_only":
        return "full" if failed else "metadata"
    return mode


def _first(*values: Any) -> Any:
    return next(v for v in values if v is not None)


def _output_entry(declaration: dict[str, Any], name: str) -> str | None:
    outputs = declaration.get("outputs")
    if isinstance(outputs, str):
        return outputs
    if isinstance(outputs, dict):
        return outputs.get(name)
    return None


@dataclasses.dataclass
class Oracle:
    """Where each value may show, re-derived from the contract."""

    visible: dict[str, bool] = dataclasses.field(default_factory=dict)
    """value -> some slot shows it (so it may be anywhere)."""
    stored: set[str] = dataclasses.field(default_factory=set)
    """Values a slot of a recorded step or of the run shows: must be in the store."""
    spanned: set[str] = dataclasses.field(default_factory=set)
    """Values a slot of a step shows: must be in that step's span."""
    persisted: set[str] = dataclasses.field(default_factory=set)
    """Outputs shown in full, and the failing step's inputs shown in full: artifacts."""
    record_run: bool = False

    def show(self, value: str, shown: bool) -> None:
        self.visible[value] = self.visible.get(value, False) or shown


def oracle(case: Case, parameters: dict[str, str]) -> Oracle:
    pipeline = case.pipeline
    declared = pipeline.capture
    request_mode = (case.override or {}).get("mode")
    request_rate = (case.override or {}).get("sample_rate")
    run_mode = _first(request_mode, declared.get("mode"), case.default_mode)
    run_rate = _first(request_rate, declared.get("sample_rate"), case.default_rate)
    run_redact = {*case.service_redact, *declared.get("redact", ())}
    union_redact = {*run_redact, *(n for s in pipeline.steps for n in s.capture.get("redact", ()))}

    def step_mode(step: ServedStep) -> str:
        return str(
            _first(step.capture.get("mode"), request_mode, declared.get("mode"), case.default_mode)
        )

    def value_shows(step: ServedStep, kind: str, name: str, *, failed: bool) -> bool:
        mode = step_mode(step)
        if mode == "none":
            return False
        if kind == "input":
            entries = (
                step.capture.get("inputs", {}).get(name),
                declared.get("inputs", {}).get(name),
            )
        else:
            entries = (_output_entry(step.capture, name), _output_entry(declared, name))
        chosen = _first(*entries, HINTS.get((step.name, kind, name)), mode)
        rate = _first(
            step.capture.get("sample_rate"),
            request_rate,
            declared.get("sample_rate"),
            case.default_rate,
        )
        return _concrete(chosen, sampled=rate == 1.0, failed=failed) == "full"

    def redacted(step: ServedStep | None, name: str) -> bool:
        names = run_redact if step is None else {*run_redact, *step.capture.get("redact", ())}
        return name in names

    result = Oracle()
    result.record_run = run_mode != "none" or any(step_mode(s) != "none" for s in pipeline.steps)
    failed = case.failing is not None
    values: dict[tuple[str, str], str] = {}  # (step, output) -> value
    consumers_show: dict[str, bool] = dict.fromkeys(parameters, True)
    ran: list[ServedStep] = []
    for step in pipeline.steps:  # execution order
        step_failed = step.name == case.failing
        arguments: dict[str, str] = {}
        for name, binding in step.inputs.items():
            if isinstance(binding, FromParameter):
                arguments[name] = parameters[binding.name]
            elif isinstance(binding, FromStepOutput):
                arguments[name] = values.get((binding.step, binding.output), "")
        if case.failing in {s.name for s in ran}:
            # Not run (an earlier step failed): it still counts for the strictest consumer.
            for name, binding in step.inputs.items():
                if isinstance(binding, FromParameter) and not value_shows(
                    step, "input", name, failed=False
                ):
                    consumers_show[binding.name] = False
            continue
        ran.append(step)
        recorded = step_mode(step) != "none"
        for name, value in arguments.items():
            shows = value_shows(step, "input", name, failed=step_failed)
            binding = step.inputs[name]
            if isinstance(binding, FromParameter) and not shows:
                consumers_show[binding.name] = False
            visible = shows and not redacted(step, name)
            result.show(value, visible)
            if visible and step_failed:
                result.persisted.add(value)
            if visible and recorded and name not in union_redact:
                result.stored.add(value)
                result.spanned.add(value)
        if step_failed:
            continue
        signature = inspect.signature(step.function)
        outcome = step.function(**{p: arguments[p] for p in signature.parameters})
        produced = outcome if isinstance(outcome, tuple) else (outcome,)
        for name, value in zip(step.outputs, produced, strict=True):
            values[step.name, name] = value
            visible = value_shows(step, "output", name, failed=False) and not redacted(step, name)
            result.show(value, visible)
            if visible:
                result.persisted.add(value)
            if visible and name not in union_redact:
                result.stored.add(value)
                result.spanned.add(value)
    run_payload = _concrete(run_mode, sampled=run_rate == 1.0, failed=failed) == "full"
    for name, value in parameters.items():
        shows = run_payload and consumers_show[name] and not redacted(None, name)
        result.show(value, shows)
        if shows:
            result.stored.add(value)
    if not failed:
        for output in pipeline.outputs:
            step = pipeline.step(output.step)
            value = values[output.step, output.output]
            shows = run_payload and value_shows(step, "output", output.output, failed=False)
            result.show(value, shows)
            if shows:
                result.stored.add(value)
    if not result.record_run:
        result.stored.clear()
        result.persisted.clear()
    return result


# --------------------------------------------------------------------------- the sinks


def _store_text() -> str:
    """Every row of every table of the session's SQLite store."""
    database = Client().zen_store.url.removeprefix("sqlite:///")
    with sqlite3.connect(database) as connection:
        return "\n".join(connection.iterdump())


def _artifact_text() -> str:
    root = Path(Client().active_stack.artifact_store.path)
    parts = []
    for folder, _, files in os.walk(root):
        for file in files:
            parts.append((Path(folder) / file).read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(parts)


def _canary() -> str:
    return "cnry" + "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:14])


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@settings(
    max_examples=int(os.environ.get("ZENML_SERVING_CAPTURE_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases())
def test_withheld_values_reach_no_sink_and_full_values_reach_the_store(case: Case) -> None:
    parameters = {name: _canary() for name in case.pipeline.parameters_model.model_fields}
    if case.failing is not None:
        step = case.pipeline.step(case.failing)
        trigger = next(b.name for b in step.inputs.values() if isinstance(b, FromParameter))
        parameters[trigger] = f"boom-{case.failing}-{parameters[trigger]}"
    note(repr(case))
    expected = oracle(case, parameters)
    withheld = sum(not shown for shown in expected.visible.values())
    event(f"withheld values: {min(withheld, 3)}+, stored values: {min(len(expected.stored), 3)}+")

    config = ServingConfig(
        log_level="DEBUG",
        log_format="json",
        capture_default=case.default_mode,
        capture_sample_rate=case.default_rate,
        capture_redact=tuple(case.service_redact),
        metrics_enabled=case.metrics,
    )
    exporter = InMemorySpanExporter()
    telemetry = Telemetry(
        config,
        span_exporter=exporter if case.tracing else None,
        set_global_tracer_provider=False,
    )
    app = create_app(config, served_pipeline=case.pipeline, telemetry=telemetry)
    logs = io.StringIO()
    root = logging.getLogger()
    handler = logging.StreamHandler(logs)
    handler.setFormatter(root.handlers[0].formatter)
    root.addHandler(handler)
    body: dict[str, Any] = {"parameters": parameters}
    if case.override is not None:
        body["capture_override"] = case.override
    try:
        with TestClient(app) as client:
            response = client.post("/invoke", json=body)
            metrics_text = client.get("/metrics").text if case.metrics else ""
    finally:
        root.removeHandler(handler)
    assert response.status_code == (500 if case.failing else 200), response.text
    spans = exporter.get_finished_spans()
    sinks = {
        "store": _store_text(),
        "artifact store": _artifact_text(),
        "spans": all_attribute_text(spans),
        "logs": logs.getvalue(),
        "/metrics": metrics_text,
    }
    for value, shown in expected.visible.items():
        if shown:
            continue
        for sink, text in sinks.items():
            assert value not in text, f"a withheld value reached the {sink}"
    for value in expected.stored:
        assert value in sinks["store"], "a value captured in full is missing from the store"
    for value in expected.persisted:
        assert value in sinks["artifact store"], "a value captured in full was not persisted"
    for value in expected.spanned if case.tracing else ():
        assert value in sinks["spans"], "a value captured in full is missing from the spans"
