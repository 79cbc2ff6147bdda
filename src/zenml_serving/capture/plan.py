"""The capture plan: every policy validated once at startup, resolved per invocation in O(steps).

    plan = build_capture_plan(served_pipeline, CaptureDefaults.from_config(config))
    capture = plan.resolve(invocation.id, invocation.capture_override)

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
- Artifacts: outputs of a succeeded step are persisted when their concrete mode is `full`, or,
  with an explicit `artifacts` key, when that key's concrete mode is `full` (so
  `{"mode": "metadata", "artifacts": "full"}` keeps artifacts without previews). A failing
  step has no outputs; what `errors_only` persists for it are its inputs. A value whose mode
  is `none` is never persisted, whatever `artifacts` says; nothing is persisted without a run.
- A request override on a service with `ZENML_SERVING_CAPTURE_OVERRIDE=deny` is answered 403 by
  the API; should one reach the plan anyway, it is ignored and `override_ignored` says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from zenml_serving.capture.errors import CaptureConfigError
from zenml_serving.capture.hints import CaptureHints, read_capture_hints
from zenml_serving.capture.policy import (
    CaptureDeclaration,
    CaptureMode,
    parse_declaration,
    parse_mode,
    parse_sample_rate,
)
from zenml_serving.capture.resolved import (
    GlobalSource,
    InvocationCapture,
    StepCapture,
    ValueCapture,
    ValueSource,
    concrete_mode,
)
from zenml_serving.capture.sampling import sampling_point

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from zenml_serving.capture.defaults import CaptureDefaults

__all__ = ["CapturePlan", "PipelineLike", "StepLike", "build_capture_plan"]

_REQUEST = "request capture_override"
_OVERRIDE_KEYS = ("mode", "sample_rate")
_REQUEST_MODES: tuple[CaptureMode | None, ...] = (None, *CaptureMode)


class StepLike(Protocol):
    """What the plan reads of a step (`deployment.model.ServedStep` fits)."""

    @property
    def name(self) -> str:
        """The step's invocation id in the pipeline."""

    @property
    def capture(self) -> Mapping[str, Any]:
        """The step's own raw `serving_capture` declaration (not merged with the pipeline's)."""

    @property
    def function(self) -> Callable[..., Any]:
        """The step's Python function, whose annotations carry capture hints."""

    @property
    def inputs(self) -> Mapping[str, Any]:
        """The step's inputs by name (only the names are used)."""

    @property
    def outputs(self) -> Sequence[str]:
        """The step's output names, in ZenML's order."""


class PipelineLike(Protocol):
    """What the plan reads of a pipeline (`deployment.model.ServedPipeline` fits)."""

    @property
    def name(self) -> str:
        """The pipeline name."""

    @property
    def capture(self) -> Mapping[str, Any]:
        """The pipeline's raw `serving_capture` declaration."""

    @property
    def steps(self) -> Sequence[StepLike]:
        """The steps."""


@dataclass(frozen=True, slots=True)
class _RunVariant:
    """The run-level decisions that depend only on the request's mode."""

    mode: CaptureMode
    source: GlobalSource
    any_step_recorded: bool


@dataclass(frozen=True, slots=True)
class _StepPlan:
    """One step's validated policy and its precomputed decisions."""

    name: str
    declaration: CaptureDeclaration
    hints: CaptureHints
    sample_rate: float | None
    variants: Mapping[CaptureMode | None, tuple[StepCapture, StepCapture]]
    """By request mode: (not sampled, sampled)."""


class CapturePlan:
    """Every capture policy of one served pipeline, validated; `resolve` once per invocation."""

    __slots__ = ("_base_rate", "_defaults", "_pipeline", "_pipeline_name", "_runs", "_steps")

    def __init__(
        self,
        *,
        pipeline_name: str,
        pipeline: CaptureDeclaration,
        defaults: CaptureDefaults,
        steps: Sequence[_StepPlan],
        runs: Mapping[CaptureMode | None, _RunVariant],
    ) -> None:
        self._pipeline_name = pipeline_name
        self._pipeline = pipeline
        self._defaults = defaults
        self._steps = tuple(steps)
        self._runs = runs
        self._base_rate = (
            pipeline.sample_rate if pipeline.sample_rate is not None else defaults.sample_rate
        )

    @property
    def pipeline(self) -> CaptureDeclaration:
        """The pipeline's validated declaration."""
        return self._pipeline

    @property
    def defaults(self) -> CaptureDefaults:
        """The service defaults the plan was built with."""
        return self._defaults

    def step_declaration(self, name: str) -> CaptureDeclaration:
        """Step `name`'s own validated declaration."""
        return self._step(name).declaration

    def step_hints(self, name: str) -> CaptureHints:
        """The capture hints read from step `name`'s annotations."""
        return self._step(name).hints

    def resolve(
        self, invocation_id: str, override: Mapping[str, Any] | None = None
    ) -> InvocationCapture:
        """The decisions for one invocation; raises `CaptureConfigError` for a bad override.

        Deterministic: the same id and override always resolve the same way.
        """
        mode, rate, ignored = self._override(override)
        point = sampling_point(invocation_id)
        base_rate = rate if rate is not None else self._base_rate
        steps: dict[str, StepCapture] = {}
        for step in self._steps:
            step_rate = step.sample_rate if step.sample_rate is not None else base_rate
            steps[step.name] = step.variants[mode][point < step_rate]
        run = self._runs[mode]
        run_sampled = point < base_rate
        defaults = self._defaults
        return InvocationCapture(
            invocation_id=invocation_id,
            mode=run.mode,
            mode_source=run.source,
            sampled=run_sampled,
            record_run=defaults.create_runs
            and (run.mode is not CaptureMode.NONE or run.any_step_recorded),
            run_payload_ok=concrete_mode(run.mode, sampled=run_sampled, failed=False)
            is CaptureMode.FULL,
            run_payload_failed=concrete_mode(run.mode, sampled=run_sampled, failed=True)
            is CaptureMode.FULL,
            override_applied=(mode is not None or rate is not None),
            override_ignored=ignored,
            max_bytes=_first(self._pipeline.max_bytes, defaults.max_bytes),
            redact=_union(defaults.redact, self._pipeline.redact),
            steps=MappingProxyType(steps),
        )

    def describe(self) -> dict[str, Any]:
        """The effective policy without a request override, for /info and the startup log."""
        run = self._runs[None]
        steps: dict[str, Any] = {}
        for step in self._steps:
            capture = step.variants[None][0]
            steps[step.name] = {
                "mode": f"{capture.mode.value} ({capture.mode_source})",
                "inputs": {
                    n: f"{v.declared.value} ({v.source})" for n, v in capture.inputs.items()
                },
                "outputs": {
                    n: f"{v.declared.value} ({v.source})" for n, v in capture.outputs.items()
                },
            }
        return {"mode": f"{run.mode.value} ({run.source})", "steps": steps}

    def _step(self, name: str) -> _StepPlan:
        for step in self._steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def _override(
        self, override: Mapping[str, Any] | None
    ) -> tuple[CaptureMode | None, float | None, bool]:
        if override is None:
            return None, None, False
        if not isinstance(override, Mapping):
            raise CaptureConfigError(
                _REQUEST, "override", f"= {override!r} is not a mapping", allowed="an object"
            )
        if not self._defaults.override_allowed:
            return None, None, any(v is not None for v in override.values())
        for key in override:
            if key not in _OVERRIDE_KEYS:
                raise CaptureConfigError(
                    _REQUEST, repr(key), "is not a known key", allowed=", ".join(_OVERRIDE_KEYS)
                )
        raw_mode, raw_rate = override.get("mode"), override.get("sample_rate")
        mode = None if raw_mode is None else parse_mode(raw_mode, where=_REQUEST, key="'mode'")
        rate = None if raw_rate is None else parse_sample_rate(raw_rate, where=_REQUEST)
        return mode, rate, False


def build_capture_plan(pipeline: PipelineLike, defaults: CaptureDefaults) -> CapturePlan:
    """Validate every capture declaration and hint of `pipeline`, precompute the decisions.

    Raises `CaptureConfigError` naming the pipeline or step, the key, the bad value and what is
    allowed: run it at startup so that a bad policy stops the service before it serves.
    """
    where = f"pipeline {pipeline.name!r}"
    all_inputs = sorted({name for step in pipeline.steps for name in step.inputs})
    all_outputs = sorted({name for step in pipeline.steps for name in step.outputs})
    declaration = parse_declaration(
        pipeline.capture,
        where=where,
        inputs=all_inputs,
        outputs=all_outputs,
        owner=f"any step of {where}",
    )
    steps = [_plan_step(step, declaration, defaults) for step in pipeline.steps]
    runs: dict[CaptureMode | None, _RunVariant] = {}
    for request_mode in _REQUEST_MODES:
        mode, source = _global_mode(None, request_mode, declaration, defaults)
        recorded = any(s.variants[request_mode][0].recorded for s in steps)
        runs[request_mode] = _RunVariant(mode, source, recorded)
    return CapturePlan(
        pipeline_name=pipeline.name,
        pipeline=declaration,
        defaults=defaults,
        steps=steps,
        runs=MappingProxyType(runs),
    )


def _plan_step(
    step: StepLike, pipeline: CaptureDeclaration, defaults: CaptureDefaults
) -> _StepPlan:
    where = f"step {step.name!r}"
    inputs = tuple(step.inputs)
    outputs = tuple(step.outputs)
    declaration = parse_declaration(step.capture, where=where, inputs=inputs, outputs=outputs)
    _check_consistent(declaration, where=where)
    hints = read_capture_hints(step.function, where=where, inputs=inputs, outputs=outputs)
    facts = _StepFacts(step.name, inputs, outputs, declaration, hints, pipeline, defaults)
    variants = {
        request_mode: (
            _resolve_step(facts, request_mode=request_mode, sampled=False),
            _resolve_step(facts, request_mode=request_mode, sampled=True),
        )
        for request_mode in _REQUEST_MODES
    }
    return _StepPlan(
        name=step.name,
        declaration=declaration,
        hints=hints,
        sample_rate=declaration.sample_rate,
        variants=MappingProxyType(variants),
    )


def _check_consistent(declaration: CaptureDeclaration, *, where: str) -> None:
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


def _global_mode(
    step: CaptureDeclaration | None,
    request_mode: CaptureMode | None,
    pipeline: CaptureDeclaration,
    defaults: CaptureDefaults,
) -> tuple[CaptureMode, GlobalSource]:
    if step is not None and step.mode is not None:
        return step.mode, "step"
    if request_mode is not None:
        return request_mode, "request"
    if pipeline.mode is not None:
        return pipeline.mode, "pipeline"
    return defaults.mode, "service"


@dataclass(frozen=True, slots=True)
class _StepFacts:
    """Everything a step's decisions depend on, except the request's mode and the sampling."""

    name: str
    inputs: Sequence[str]
    outputs: Sequence[str]
    step: CaptureDeclaration
    hints: CaptureHints
    pipeline: CaptureDeclaration
    defaults: CaptureDefaults


def _resolve_step(
    facts: _StepFacts, *, request_mode: CaptureMode | None, sampled: bool
) -> StepCapture:
    name, inputs, outputs = facts.name, facts.inputs, facts.outputs
    step, hints, pipeline, defaults = facts.step, facts.hints, facts.pipeline, facts.defaults
    mode, source = _global_mode(step, request_mode, pipeline, defaults)
    recorded = mode is not CaptureMode.NONE
    artifacts = step.artifacts if step.artifacts is not None else pipeline.artifacts
    create_runs = defaults.create_runs

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
        failed_inputs[input_name] = value(declared, value_source, failed=True, can_persist=True)
    ok_outputs: dict[str, ValueCapture] = {}
    for output_name in outputs:
        declared, value_source = chain(
            step.output_mode(output_name),
            pipeline.output_mode(output_name),
            hints.outputs.get(output_name),
        )
        ok_outputs[output_name] = value(declared, value_source, failed=False, can_persist=True)

    return StepCapture(
        name=name,
        mode=mode,
        mode_source=source,
        sampled=sampled,
        error_detail=recorded
        and concrete_mode(mode, sampled=sampled, failed=True) is CaptureMode.FULL,
        max_bytes=_first(step.max_bytes, pipeline.max_bytes, defaults.max_bytes),
        redact=_union(defaults.redact, pipeline.redact, step.redact),
        inputs=MappingProxyType(ok_inputs),
        failed_inputs=MappingProxyType(failed_inputs),
        outputs=MappingProxyType(ok_outputs),
        fallback=value(mode, "global", failed=False, can_persist=False),
        fallback_failed=value(mode, "global", failed=True, can_persist=False),
    )


def _explain(values: Mapping[str, ValueCapture]) -> dict[str, str]:
    return {name: f"{v.declared.value} ({v.source})" for name, v in values.items()}


def _first(*values: int | None) -> int:
    for value in values:
        if value is not None:
            return value
    raise AssertionError("the service default is always set")  # pragma: no cover


def _union(*lists: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for names in lists for name in names))
