"""The capture plan: every policy validated once at startup, resolved per invocation in O(steps).

    plan = build_capture_plan(served_pipeline, CaptureDefaults.from_config(config))
    capture = plan.resolve(invocation.id, invocation.capture_override)

Building validates everything (`CaptureConfigError` names the pipeline or step, the key, the bad
value and what is allowed) and precomputes every step's decisions for each possible request
mode and sampling outcome (`precedence.py` holds the rules). Resolving is then one hash of the
invocation id, one comparison per step with its sample rate and one dict lookup: everything that
depends only on the request's mode and the sampling outcomes (the step decisions and the
run-level value decisions, `run_values.py`) is decided once per such combination and shared,
so every sink of one invocation consults one object and an invocation pays no rule evaluation.
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
from zenml_serving.capture.precedence import (
    REQUEST_MODES,
    StepFacts,
    check_consistent,
    first,
    global_mode,
    resolve_step,
    union,
)
from zenml_serving.capture.resolved import (
    GlobalSource,
    InvocationCapture,
    StepCapture,
    ValueCapture,
    concrete_mode,
)
from zenml_serving.capture.run_values import RunValues, ValueRoutes, decide_run_values
from zenml_serving.capture.sampling import sampling_point
from zenml_serving.deployment.model import FromParameter

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from zenml_serving.capture.defaults import CaptureDefaults

__all__ = ["CapturePlan", "PipelineLike", "StepLike", "build_capture_plan"]

_REQUEST = "request capture_override"
_OVERRIDE_KEYS = ("mode", "sample_rate")


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


class PipelineOutputLike(Protocol):
    """What the plan reads of a pipeline output (`deployment.model.PipelineOutput` fits)."""

    @property
    def name(self) -> str:
        """The name the client sees."""

    @property
    def step(self) -> str:
        """The step that produces it."""

    @property
    def output(self) -> str:
        """The step output behind it."""


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

    @property
    def outputs(self) -> Sequence[PipelineOutputLike]:
        """The pipeline's outputs."""


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


_SharedKey = tuple[CaptureMode | None, bool, tuple[bool, ...]]
"""(request mode, run sampled, each step sampled): all that decisions depend on."""


@dataclass(frozen=True, slots=True)
class _Shared:
    """The decisions every invocation with the same `_SharedKey` shares."""

    steps: Mapping[str, StepCapture]
    run_values: RunValues


class CapturePlan:
    """Every capture policy of one served pipeline, validated; `resolve` once per invocation."""

    __slots__ = (
        "_base_rate",
        "_defaults",
        "_pipeline",
        "_pipeline_name",
        "_routes",
        "_runs",
        "_shared",
        "_steps",
    )

    def __init__(
        self,
        *,
        pipeline_name: str,
        pipeline: CaptureDeclaration,
        defaults: CaptureDefaults,
        steps: Sequence[_StepPlan],
        runs: Mapping[CaptureMode | None, _RunVariant],
        routes: ValueRoutes,
    ) -> None:
        self._pipeline_name = pipeline_name
        self._routes = routes
        # Bounded: request modes x distinct sample rates (sampling outcomes nest) x 2.
        self._shared: dict[_SharedKey, _Shared] = {}
        self._pipeline = pipeline
        self._defaults = defaults
        self._steps = tuple(steps)
        self._runs = runs
        self._base_rate = (
            pipeline.sample_rate if pipeline.sample_rate is not None else defaults.sample_rate
        )

    @property
    def pipeline_name(self) -> str:
        """The name of the pipeline the plan was built for."""
        return self._pipeline_name

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
        run_sampled = point < base_rate
        key = (
            mode,
            run_sampled,
            tuple(
                point < (step.sample_rate if step.sample_rate is not None else base_rate)
                for step in self._steps
            ),
        )
        shared = self._shared.get(key)
        if shared is None:
            shared = self._shared.setdefault(key, self._decide(mode, key[2]))
        run = self._runs[mode]
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
            max_bytes=first(self._pipeline.max_bytes, defaults.max_bytes),
            redact=union(defaults.redact, self._pipeline.redact),
            steps=shared.steps,
            run_values=shared.run_values,
        )

    def _decide(self, mode: CaptureMode | None, sampled: tuple[bool, ...]) -> _Shared:
        steps = MappingProxyType(
            {
                step.name: step.variants[mode][step_sampled]
                for step, step_sampled in zip(self._steps, sampled, strict=True)
            }
        )
        return _Shared(steps, decide_run_values(self._routes, steps))

    @property
    def redact(self) -> tuple[str, ...]:
        """Every extra field name declared anywhere (service, pipeline, steps): what telemetry
        redacts in span attributes and log events, which are not tied to one step."""
        return union(
            self._defaults.redact,
            self._pipeline.redact,
            *(step.declaration.redact for step in self._steps),
        )

    def describe(self) -> dict[str, Any]:
        """The effective policy without a request override, for /info and the startup log."""
        run = self._runs[None]
        steps: dict[str, Any] = {}
        for step in self._steps:
            capture = step.variants[None][0]
            steps[step.name] = {
                "mode": f"{capture.mode.value} ({capture.mode_source})",
                "inputs": _explain(capture.inputs),
                "outputs": _explain(capture.outputs),
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
    for request_mode in REQUEST_MODES:
        mode, source = global_mode(None, request_mode, declaration, defaults)
        recorded = any(s.variants[request_mode][0].recorded for s in steps)
        runs[request_mode] = _RunVariant(mode, source, recorded)
    consumers: dict[str, list[tuple[str, str]]] = {}
    for step in pipeline.steps:
        for name, binding in step.inputs.items():
            if isinstance(binding, FromParameter):
                consumers.setdefault(binding.name, []).append((step.name, name))
    routes = ValueRoutes(
        consumers=MappingProxyType({p: tuple(c) for p, c in consumers.items()}),
        outputs=MappingProxyType({o.name: (o.step, o.output) for o in pipeline.outputs}),
    )
    return CapturePlan(
        pipeline_name=pipeline.name,
        pipeline=declaration,
        defaults=defaults,
        steps=steps,
        runs=MappingProxyType(runs),
        routes=routes,
    )


def _plan_step(
    step: StepLike, pipeline: CaptureDeclaration, defaults: CaptureDefaults
) -> _StepPlan:
    where = f"step {step.name!r}"
    inputs = tuple(step.inputs)
    outputs = tuple(step.outputs)
    declaration = parse_declaration(step.capture, where=where, inputs=inputs, outputs=outputs)
    check_consistent(declaration, where=where)
    hints = read_capture_hints(step.function, where=where, inputs=inputs, outputs=outputs)
    facts = StepFacts(step.name, inputs, outputs, declaration, hints, pipeline, defaults)
    variants = {
        request_mode: (
            resolve_step(facts, request_mode=request_mode, sampled=False),
            resolve_step(facts, request_mode=request_mode, sampled=True),
        )
        for request_mode in REQUEST_MODES
    }
    return _StepPlan(
        name=step.name,
        declaration=declaration,
        hints=hints,
        sample_rate=declaration.sample_rate,
        variants=MappingProxyType(variants),
    )


def _explain(values: Mapping[str, ValueCapture]) -> dict[str, str]:
    return {name: f"{v.declared.value} ({v.source})" for name, v in values.items()}
