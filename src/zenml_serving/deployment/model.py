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
    "FromArtifact",
    "FromLiteral",
    "FromParameter",
    "FromStepOutput",
    "InputBinding",
    "LoadedArtifact",
    "LoadedModelVersion",
    "PipelineHooks",
    "PipelineOutput",
    "RetryPolicy",
    "ServedPipeline",
    "ServedStep",
    "ServingSettings",
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


@dataclass(frozen=True, slots=True)
class LoadedModelVersion:
    """A ZenML model version resolved once at startup (the pipeline's or a step's `model`)."""

    id: UUID
    model: str
    version: str
    number: int | None
    stage: str | None
    response: Any = field(repr=False, compare=False)
    """The store's ModelVersionResponse, for the step context's `model_version`."""
    model_object: Any = field(default=None, repr=False, compare=False)
    """The ZenML `Model` pinned to this version, for the step context's `model` (built once:
    building it may read the store)."""

    def describe(self) -> dict[str, Any]:
        """The fields /info shows."""
        return {
            "id": str(self.id),
            "model": self.model,
            "version": self.version,
            "number": self.number,
            "stage": self.stage,
        }


@dataclass(frozen=True, slots=True)
class LoadedArtifact:
    """An artifact version resolved and loaded (with its own materializer) once at startup."""

    id: UUID
    name: str
    version: str
    via: Literal["client", "model", "external"]
    """How the pipeline body asked for it: `Client().get_artifact_version`, a model's
    `get_artifact`, or `ExternalArtifact`."""
    consumers: tuple[str, ...]
    """`step.argument` pairs that receive it."""
    model_version: LoadedModelVersion | None = None
    response: Any = field(default=None, repr=False, compare=False)
    """The store's ArtifactVersionResponse, for the step context's `inputs`."""

    def describe(self) -> dict[str, Any]:
        """The fields /info shows."""
        return {
            "id": str(self.id),
            "name": self.name,
            "version": self.version,
            "via": self.via,
            "consumers": list(self.consumers),
            "model_version": self.model_version.describe() if self.model_version else None,
        }


@dataclass(frozen=True, slots=True)
class FromArtifact:
    """The step argument receives an artifact loaded at startup: shared, never copied (a model
    can be large), so, like an upstream output, a step must not mutate it."""

    value: Any
    artifact: LoadedArtifact


InputBinding = FromParameter | FromLiteral | FromStepOutput | FromArtifact


@dataclass(frozen=True, slots=True)
class PipelineHooks:
    """The pipeline's `on_init` (with its validated kwargs) and `on_cleanup`, imported."""

    on_init: Callable[..., Any] | None = None
    init_kwargs: Mapping[str, Any] = field(default_factory=dict)
    on_cleanup: Callable[..., Any] | None = None
    init_source: str = ""
    cleanup_source: str = ""


@dataclass(frozen=True, slots=True)
class ServingSettings:
    """What the snapshot's ZenML settings ask of an in-process service."""

    environment: Mapping[str, str] = field(default_factory=dict)
    """The pipeline's `environment`, applied to the process before `on_init`."""
    max_concurrency: int | None = None
    """`ResourceSettings.max_concurrency`: the default of ZENML_SERVING_MAX_CONCURRENCY."""
    step_concurrency: int | None = None
    """`extra["serving_step_concurrency"]`: the default of ZENML_SERVING_STEP_CONCURRENCY."""
    app_title: str | None = None
    app_description: str | None = None
    app_version: str | None = None
    ignored: tuple[str, ...] = ()
    """DeploymentSettings fields that only mean something to ZenML's FastAPI server."""


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
    model_version: LoadedModelVersion | None = None
    """The step's (or else the pipeline's) model version, when it names one."""
    model: Any = None
    """The step's (or else the pipeline's) ZenML `Model` configuration, if any."""
    artifact_inputs: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    """Argument -> the loaded artifact version responses it receives (the context's `inputs`)."""


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
    hooks: PipelineHooks = field(default_factory=PipelineHooks)
    settings: ServingSettings = field(default_factory=ServingSettings)
    artifacts: tuple[LoadedArtifact, ...] = ()
    """Every artifact version loaded at startup, in step order."""
    model_versions: tuple[LoadedModelVersion, ...] = ()
    """Every model version resolved at startup (the pipeline's first)."""

    def parameter_schema(self) -> dict[str, Any]:
        """The JSON schema of the request's `parameters` object."""
        return self.parameters_model.model_json_schema()

    def loaded_values(self) -> dict[UUID, Any]:
        """Artifact version id -> the object loaded for it (a reload reuses what is unchanged)."""
        return {
            binding.artifact.id: binding.value
            for step in self.steps
            for binding in step.inputs.values()
            if isinstance(binding, FromArtifact)
        }

    def step(self, name: str) -> ServedStep:
        """The step with invocation id `name`."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)
