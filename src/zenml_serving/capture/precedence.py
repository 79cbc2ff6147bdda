"""The precedence rules: how the layers combine into one step's decisions.

Precedence (capture-policies.md):
- global mode of a step: step `mode` > request `capture_override.mode` > pipeline `mode` >
  service default; the run-level mode is the same chain without the step;
- per value: step per-value > pipeline per-value > `Capture`/`CapturedOutput` annotation >
  the step's global mode (a per-value entry at a higher layer silences the annotation for that
  value only);
- `sample_rate`: step > request > pipeline > service; `max_bytes`: step > pipeline > service;
  `redact`: the union of service, pipeline and step lists (a layer can only add names);
- `artifacts`: step > pipeline; without it, artifacts follow each value's concrete mode.

Where the contract is silent, this module decides (and the tests pin it):
- `none` as a step's global mode is a gate: the step records nothing (ids and timings only on
  its span), and per-value entries or annotations do not re-open it. A step declaration that
  says `mode: none` together with a non-`none` per-value entry or `artifacts` contradicts
  itself and is rejected at startup.
- A step's own non-`none` mode under a request or pipeline `none` wins, as precedence says: the
  invocation then records a ZenML run holding only the recorded steps, and the run-level record
  stays payload-free (no request parameters, no outputs, no error text), because the run-level
  mode is `none`. `record_run` is therefore "run-level mode is not `none`, or some step is
  recorded", and always False when the service sets `ZENML_SERVING_CREATE_RUNS=false`.
- Sampling uses one point per invocation (`sampling.sampling_point`) compared with each
  layer's effective rate, so decisions nest: a step with a higher rate than the run is sampled
  whenever the run is.
- `errors_only` turns a failing step to `full` for that step (inputs, error, traceback) and,
  when it is the run-level mode, the run's payloads; other steps keep their own decisions.
- A failing step's error message and traceback are recorded only where every input of the
  step is previewed on failure (messages quote inputs: `ValueError(f"bad {text!r}")`); a step
  with a `none` or `metadata` input, or an input whose name is redacted, records the error
  type only, in every sink.
- Artifacts: outputs of a succeeded step are persisted when their concrete mode is `full`, or,
  with an explicit `artifacts` key, when that key's concrete mode is `full` (so
  `{"mode": "metadata", "artifacts": "full"}` keeps artifacts without previews). A failing
  step has no outputs; what `errors_only` persists for it are its inputs. A value whose mode
  is `none` is never persisted, whatever `artifacts` says; nothing is persisted without a run.
  A value whose own name is sensitive (built-in or declared `redact` names) is never persisted
  either: its previews show `[REDACTED]`, and an artifact would hold it whole.
- A request override on a service with `ZENML_SERVING_CAPTURE_OVERRIDE=deny` is answered 403 by
  the API; should one reach the plan anyway, it is ignored and `override_ignored` says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from zenml_serving.capture.detectors import is_sensitive_field
from zenml_serving.capture.errors import CaptureConfigError
from zenml_serving.capture.policy import CaptureDeclaration, CaptureMode
from zenml_serving.capture.resolved import (
    GlobalSource,
    StepCapture,
    ValueCapture,
    ValueSource,
    concrete_mode,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from zenml_serving.capture.defaults import CaptureDefaults
    from zenml_serving.capture.hints import CaptureHints

__all__ = [
    "REQUEST_MODES",
    "StepFacts",
    "check_consistent",
    "first",
    "global_mode",
    "resolve_step",
    "union",
]

REQUEST_MODES: tuple[CaptureMode | None, ...] = (None, *CaptureMode)
"""Every mode a request override can ask for, and None for no override."""


def check_consistent(declaration: CaptureDeclaration, *, where: str) -> None:
    """`mode: none` records nothing; a per-value or artifacts entry asking for more is a bug."""
    if declaration.mode is not CaptureMode.NONE:
        return
    entries: list[tuple[str, CaptureMode | None]] = [
        ("'artifacts'", declaration.artifacts),
        ("'outputs'", declaration.all_outputs),
        *((f"'inputs'[{n!r}]", m) for n, m in declaration.inputs.items()),
        *((f"'outputs'[{n!r}]", m) for n, m in declaration.outputs.items()),
    ]
    for key, mode in entries:
        if mode is not None and mode is not CaptureMode.NONE:
            raise CaptureConfigError(
                where,
                key,
                f"= {mode.value!r} contradicts 'mode' = 'none', which records nothing for the step",
                allowed="'none' here, or a step 'mode' such as 'metadata' that records the step",
            )


def global_mode(
    step: CaptureDeclaration | None,
    request_mode: CaptureMode | None,
    pipeline: CaptureDeclaration,
    defaults: CaptureDefaults,
) -> tuple[CaptureMode, GlobalSource]:
    """Step `mode` > request mode > pipeline `mode` > service default (no step: run level)."""
    if step is not None and step.mode is not None:
        return step.mode, "step"
    if request_mode is not None:
        return request_mode, "request"
    if pipeline.mode is not None:
        return pipeline.mode, "pipeline"
    return defaults.mode, "service"


@dataclass(frozen=True, slots=True)
class StepFacts:
    """Everything a step's decisions depend on, except the request's mode and the sampling."""

    name: str
    inputs: Sequence[str]
    outputs: Sequence[str]
    step: CaptureDeclaration
    hints: CaptureHints
    pipeline: CaptureDeclaration
    defaults: CaptureDefaults


def resolve_step(
    facts: StepFacts, *, request_mode: CaptureMode | None, sampled: bool
) -> StepCapture:
    """Every decision for one step, given the request's mode and the sampling outcome."""
    name, inputs, outputs = facts.name, facts.inputs, facts.outputs
    step, hints, pipeline, defaults = facts.step, facts.hints, facts.pipeline, facts.defaults
    mode, source = global_mode(step, request_mode, pipeline, defaults)
    recorded = mode is not CaptureMode.NONE
    artifacts = step.artifacts if step.artifacts is not None else pipeline.artifacts
    create_runs = defaults.create_runs
    redact = union(defaults.redact, pipeline.redact, step.redact)

    def value(
        declared: CaptureMode, value_source: ValueSource, *, failed: bool, can_persist: bool
    ) -> ValueCapture:
        concrete = (
            concrete_mode(declared, sampled=sampled, failed=failed)
            if recorded
            else CaptureMode.NONE
        )
        persist = False
        if can_persist and create_runs and concrete is not CaptureMode.NONE:
            rule = (
                concrete
                if artifacts is None
                else concrete_mode(artifacts, sampled=sampled, failed=failed)
            )
            persist = rule is CaptureMode.FULL
        return ValueCapture(declared, value_source, concrete, persist)

    def chain(
        step_entry: CaptureMode | None,
        pipeline_entry: CaptureMode | None,
        hint: CaptureMode | None,
    ) -> tuple[CaptureMode, ValueSource]:
        if step_entry is not None:
            return step_entry, "step"
        if pipeline_entry is not None:
            return pipeline_entry, "pipeline"
        if hint is not None:
            return hint, "annotation"
        return mode, "global"

    ok_inputs: dict[str, ValueCapture] = {}
    failed_inputs: dict[str, ValueCapture] = {}
    for input_name in inputs:
        declared, value_source = chain(
            step.inputs.get(input_name),
            pipeline.inputs.get(input_name),
            hints.inputs.get(input_name),
        )
        # A succeeded step's inputs are upstream outputs or parameters: not persisted again.
        ok_inputs[input_name] = value(declared, value_source, failed=False, can_persist=False)
        failed_inputs[input_name] = value(
            declared,
            value_source,
            failed=True,
            can_persist=not is_sensitive_field(input_name, redact),
        )
    ok_outputs: dict[str, ValueCapture] = {}
    for output_name in outputs:
        declared, value_source = chain(
            step.output_mode(output_name),
            pipeline.output_mode(output_name),
            hints.outputs.get(output_name),
        )
        ok_outputs[output_name] = value(
            declared,
            value_source,
            failed=False,
            can_persist=not is_sensitive_field(output_name, redact),
        )

    return StepCapture(
        name=name,
        mode=mode,
        mode_source=source,
        sampled=sampled,
        # Error messages often quote inputs: full detail only where every input shows too.
        error_detail=recorded
        and concrete_mode(mode, sampled=sampled, failed=True) is CaptureMode.FULL
        and all(v.preview and not is_sensitive_field(n, redact) for n, v in failed_inputs.items()),
        max_bytes=first(step.max_bytes, pipeline.max_bytes, defaults.max_bytes),
        redact=redact,
        inputs=MappingProxyType(ok_inputs),
        failed_inputs=MappingProxyType(failed_inputs),
        outputs=MappingProxyType(ok_outputs),
        fallback=value(mode, "global", failed=False, can_persist=False),
        fallback_failed=value(mode, "global", failed=True, can_persist=False),
    )


def first(*values: int | None) -> int:
    """The first value that is set (the service default always is)."""
    for value in values:
        if value is not None:
            return value
    raise AssertionError("the service default is always set")  # pragma: no cover


def union(*lists: tuple[str, ...]) -> tuple[str, ...]:
    """All names of all lists, in order, once each."""
    return tuple(dict.fromkeys(name for names in lists for name in names))
