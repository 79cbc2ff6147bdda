"""The immutable, request-ready description of a served pipeline.

Everything slow (store calls, imports, tracing the pipeline body, building validators) happens
once in `loader.py` and ends up here. The engine only ever reads these objects, so concurrent
invocations cannot interfere through them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from uuid import UUID

    import pydantic

__all__ = [
    "FromLiteral",
    "FromParameter",
    "FromStepOutput",
    "InputBinding",
    "PipelineOutput",
    "RetryPolicy",
    "ServedPipeline",
    "ServedStep",
]

_IMMUTABLE = (str, int, float, bool, bytes, type(None), complex, frozenset)


@dataclass(frozen=True, slots=True)
class FromParameter:
    """The step argument receives the request's value of pipeline parameter `name`."""

    name: str
    coerce: Callable[[Any], Any] | None = None
    """Validator for the step's own annotation, when it differs from the parameter's."""


@dataclass(frozen=True, slots=True)
class FromLiteral:
    """The step argument receives a value fixed when the snapshot was made."""

    value: Any

    def fresh(self) -> Any:
        """A copy no other invocation shares, so a step that mutates it harms no one."""
        if isinstance(self.value, _IMMUTABLE):
            return self.value
        return copy.deepcopy(self.value)


@dataclass(frozen=True, slots=True)
class FromStepOutput:
    """The step argument receives output `output` of the upstream step `step`."""

    step: str
    output: str


InputBinding = FromParameter | FromLiteral | FromStepOutput


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """ZenML's StepRetryConfig, applied in-process."""

    max_retries: int
    delay_s: float
    backoff: float


@dataclass(frozen=True, slots=True)
class ServedStep:
    """One step invocation of the pipeline, ready to call."""

    name: str
    """The invocation id (unique in the pipeline, e.g. `normalise_2`)."""
    function: Callable[..., Any]
    inputs: Mapping[str, InputBinding]
    outputs: tuple[str, ...]
    upstream: tuple[str, ...]
    retry: RetryPolicy | None = None
    on_success: Callable[..., Any] | None = None
    on_failure: Callable[..., Any] | None = None
    capture: Mapping[str, Any] = field(default_factory=dict)
    """The step's own `extra["serving_capture"]` declaration, unvalidated."""
    input_annotations: Mapping[str, Any] = field(default_factory=dict)
    output_annotations: Mapping[str, Any] = field(default_factory=dict)
    output_materializers: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    """Materializer sources per output, from the snapshot (used only to persist artifacts)."""
    source: str = ""
    """Import path of the step function, for /info and error messages."""


@dataclass(frozen=True, slots=True)
class PipelineOutput:
    """A pipeline output: the name the client sees and the step output behind it."""

    name: str
    step: str
    output: str


@dataclass(frozen=True)
class ServedPipeline:
    """A loaded snapshot: ordered steps, parameter wiring and validation, output mapping."""

    name: str
    snapshot_id: UUID
    steps: tuple[ServedStep, ...]
    """In a valid execution order: every step after all of its upstream steps."""
    parameters_model: type[pydantic.BaseModel]
    """Validates the request's `parameters` (unknown, missing and mistyped fields are errors)."""
    outputs: tuple[PipelineOutput, ...]
    source_kind: Literal["snapshot", "deployment"] = "snapshot"
    deployment_id: UUID | None = None
    deployment_name: str | None = None
    """The ZenML deployment's name, when loaded from a deployment."""
    snapshot_name: str | None = None
    project_id: UUID | None = None
    stack_id: UUID | None = None
    pipeline_id: UUID | None = None
    capture: Mapping[str, Any] = field(default_factory=dict)
    """The pipeline's `extra["serving_capture"]` declaration, unvalidated."""
    zenml_version: str = ""
    init_hook_result: Any = None

    def parameter_schema(self) -> dict[str, Any]:
        """The JSON schema of the request's `parameters` object."""
        return self.parameters_model.model_json_schema()

    def step(self, name: str) -> ServedStep:
        """The step with invocation id `name`."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)
