"""Load a snapshot (or a ZenML deployment's snapshot) by ID and build a ServedPipeline.

This is the only module that talks to the ZenML store for serving, and it does so once, at
startup. Step code is imported here, the pipeline body is traced for parameter wiring, and
every validator the request path needs is built here.
"""

from __future__ import annotations

import inspect
import os
import typing
from typing import TYPE_CHECKING, Any, Literal

import pydantic

from zenml_serving.deployment.artifacts import ArtifactLoadError, ArtifactResolver
from zenml_serving.deployment.capture_declarations import (
    ConflictingCaptureError,
    declared_capture,
)
from zenml_serving.deployment.features import (
    UnsupportedFeatureError,
    check_pipeline_features,
    check_step_features,
)
from zenml_serving.deployment.graph import execution_order
from zenml_serving.deployment.hooks import HookFailedError, load_hooks
from zenml_serving.deployment.model import (
    FromArtifact,
    FromLiteral,
    FromParameter,
    FromStepOutput,
    InputBinding,
    LoadedModelVersion,
    PipelineOutput,
    RetryPolicy,
    ServedPipeline,
    ServedStep,
)
from zenml_serving.deployment.parameters import build_parameters_model
from zenml_serving.deployment.settings import read_settings
from zenml_serving.deployment.wiring import UnservableWiringError, trace_wiring

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path
    from uuid import UUID

    from zenml.client import Client
    from zenml.config.step_configurations import Step
    from zenml.models import DeploymentResponse, PipelineSnapshotResponse

__all__ = ["DeploymentLoadError", "load_served_pipeline"]


class DeploymentLoadError(RuntimeError):
    """The snapshot cannot be served; the message is one line that says what to do."""


def load_served_pipeline(
    target_id: UUID,
    *,
    source_root: Path,
    client: Client | None = None,
    loaded_artifacts: Mapping[UUID, Any] | None = None,
) -> ServedPipeline:
    """Fetch the snapshot or deployment `target_id` and build everything a request needs.

    `loaded_artifacts` (artifact version id -> object) are reused instead of loaded again: a
    reload passes what the served version already holds.
    """
    from zenml.utils import source_utils

    client = client if client is not None else _connect()
    snapshot, kind, deployment = _fetch(client, target_id)
    source_utils.set_custom_source_root(str(source_root))
    try:
        check_pipeline_features(snapshot)
        return _build(snapshot, kind, deployment, client, loaded_artifacts or {})
    except ArtifactLoadError as exc:
        raise DeploymentLoadError(
            f"snapshot {snapshot.id} ({snapshot.pipeline_configuration.name}): cannot load "
            f"what the pipeline body asks for: {exc}"
        ) from exc
    except HookFailedError as exc:
        raise DeploymentLoadError(f"snapshot {snapshot.id}: {exc}") from exc
    except (UnsupportedFeatureError, UnservableWiringError, ConflictingCaptureError) as exc:
        raise DeploymentLoadError(
            f"snapshot {snapshot.id} ({snapshot.pipeline_configuration.name}) cannot be "
            f"served: {exc}"
        ) from exc
    except (ImportError, AttributeError) as exc:
        raise DeploymentLoadError(
            f"importing the step code of snapshot {snapshot.id} failed ({type(exc).__name__}: "
            f"{exc}); run from the folder the snapshot was made in, or set "
            f"ZENML_SERVING_SOURCE_ROOT (now {source_root})"
        ) from exc


# ZenML's own switch (no ZENML_ prefix): a serving process only reads the store, and N replicas
# starting at once must not race to migrate a shared store's schema (that is the ZenML server's
# or `zenml` CLI's job; `zenml-serving snapshot` migrates the local default). It also saves
# ~0.4 CPU-s of startup. Set DISABLE_DATABASE_MIGRATION=false to let serving migrate.
_MIGRATION_SWITCH = "DISABLE_DATABASE_MIGRATION"


def _connect() -> Client:
    from zenml.client import Client

    os.environ.setdefault(_MIGRATION_SWITCH, "true")
    try:
        client = Client()
        _ = client.zen_store  # opens the store now, so an unreachable one fails here
    except Exception as exc:
        raise DeploymentLoadError(
            f"cannot open the ZenML store ({type(exc).__name__}: {exc}); check "
            "ZENML_STORE_URL / ZENML_CONFIG_PATH and that the store is reachable"
        ) from exc
    return client


def _fetch(
    client: Client, target_id: UUID
) -> tuple[PipelineSnapshotResponse, Literal["snapshot", "deployment"], DeploymentResponse | None]:
    try:
        return client.get_snapshot(target_id, hydrate=True), "snapshot", None
    except KeyError:
        pass
    except Exception as exc:
        raise DeploymentLoadError(
            f"cannot read snapshot {target_id} from the ZenML store ({type(exc).__name__}: "
            f"{exc}); check that the store is reachable"
        ) from exc
    try:
        deployment = client.get_deployment(target_id, hydrate=True)
    except KeyError:
        raise DeploymentLoadError(
            f"no snapshot or deployment with ID {target_id} in the ZenML store "
            f"({client.zen_store.url}); create one with `zenml-serving snapshot "
            "module:pipeline` and set ZENML_PIPELINE_DEPLOYMENT_ID to the ID it prints"
        ) from None
    if deployment.snapshot is None:
        raise DeploymentLoadError(f"deployment {target_id} has no snapshot attached")
    snapshot = client.get_snapshot(deployment.snapshot.id, hydrate=True)
    return snapshot, "deployment", deployment


def _build(
    snapshot: PipelineSnapshotResponse,
    kind: Literal["snapshot", "deployment"],
    deployment: DeploymentResponse | None,
    client: Client,
    loaded_artifacts: Mapping[UUID, Any],
) -> ServedPipeline:
    from zenml.utils import source_utils

    spec = snapshot.pipeline_spec
    assert spec is not None  # checked by check_pipeline_features
    assert spec.source is not None
    pipeline = source_utils.load(spec.source)
    pipeline_name = snapshot.pipeline_configuration.name
    baseline = dict(spec.parameters or {})
    parameters_model = build_parameters_model(pipeline_name, pipeline.entrypoint, baseline)
    annotations = {name: field.annotation for name, field in parameters_model.model_fields.items()}
    wiring = trace_wiring(
        pipeline,
        baseline,
        annotations,
        {name: step.config.parameters for name, step in snapshot.step_configurations.items()},
    )

    hooks = load_hooks(snapshot.pipeline_configuration)
    resolver = ArtifactResolver(client, loaded_artifacts)
    pipeline_model = snapshot.pipeline_configuration.model
    pipeline_model_version = resolver.model_version(pipeline_model)
    steps: dict[str, ServedStep] = {}
    for name, step in snapshot.step_configurations.items():
        step_model = step.config.model or pipeline_model
        model_version = (
            resolver.model_version(step.config.model)
            if step.config.model is not None
            else pipeline_model_version
        )
        loaded = resolver.step_bindings(name, step, model_version)
        steps[name] = _build_step(
            name,
            step,
            wiring.parameter_args.get(name, {}),
            annotations,
            loaded,
            model=step_model,
            model_version=model_version,
        )
    order = execution_order({name: s.upstream for name, s in steps.items()})

    return ServedPipeline(
        name=pipeline_name,
        snapshot_id=snapshot.id,
        snapshot_name=snapshot.name,
        steps=tuple(steps[name] for name in order),
        parameters_model=parameters_model,
        outputs=_pipeline_outputs(snapshot),
        source_kind=kind,
        deployment_id=deployment.id if deployment is not None else None,
        deployment_name=deployment.name if deployment is not None else None,
        project_id=snapshot.project_id,
        stack_id=snapshot.stack.id if snapshot.stack else None,
        pipeline_id=snapshot.pipeline.id if snapshot.pipeline else None,
        capture=declared_capture(
            snapshot.pipeline_configuration.extra,
            snapshot.pipeline_configuration.settings,
            f"pipeline '{pipeline_name}'",
        ),
        zenml_version=snapshot.client_version or "",
        hooks=hooks,
        settings=read_settings(snapshot.pipeline_configuration),
        artifacts=resolver.artifacts,
        model_versions=resolver.model_versions,
    )


def _build_step(
    name: str,
    step: Step,
    wired: Mapping[str, str],
    parameter_annotations: Mapping[str, Any],
    loaded: Mapping[str, FromArtifact | FromLiteral],
    *,
    model: Any,
    model_version: LoadedModelVersion | None,
) -> ServedStep:
    from zenml.utils import source_utils

    assert step.spec.source is not None
    step_object = source_utils.load(step.spec.source)
    function: Callable[..., Any] = step_object.entrypoint
    check_step_features(name, step)
    definition = step_object.entrypoint_definition
    input_annotations = {arg: p.annotation for arg, p in definition.inputs.items()}

    bindings: dict[str, InputBinding] = {}
    for arg in inspect.signature(function).parameters:
        annotation = input_annotations.get(arg, Any)
        if arg in step.spec.inputs:
            source = step.spec.inputs[arg]
            assert not isinstance(source, list)  # refused by check_step_features
            bindings[arg] = FromStepOutput(step=source.step_name, output=source.output_name)
        elif arg in loaded:
            bindings[arg] = loaded[arg]
        elif arg in wired:
            parameter = wired[arg]
            coerce = None
            if annotation != parameter_annotations.get(parameter, Any):
                coerce = pydantic.TypeAdapter(annotation).validate_python
            bindings[arg] = FromParameter(name=parameter, coerce=coerce)
        elif arg in step.config.parameters:
            bindings[arg] = FromLiteral(
                _validated(name, arg, annotation, step.config.parameters[arg])
            )
        else:
            raise DeploymentLoadError(
                f"step '{name}' argument '{arg}' has no value in the snapshot (not a parameter, "
                "not an upstream output): re-create the snapshot"
            )

    retry = None
    if step.config.retry is not None:
        retry = RetryPolicy(
            max_retries=step.config.retry.max_retries,
            delay_s=float(step.config.retry.delay),
            backoff=float(step.config.retry.backoff),
        )
    return ServedStep(
        name=name,
        function=function,
        inputs=bindings,
        outputs=tuple(definition.outputs),
        upstream=tuple(sorted(set(step.spec.upstream_steps))),
        retry=retry,
        on_success=_load_hook(step.config.success_hook_source),
        on_failure=_load_hook(step.config.failure_hook_source),
        capture=declared_capture(
            step.step_config_overrides.extra, step.step_config_overrides.settings, f"step '{name}'"
        ),
        input_annotations=_hints(function, input_annotations),
        output_annotations={o: a.resolved_annotation for o, a in definition.outputs.items()},
        output_materializers={
            name: tuple(output.materializer_source) for name, output in step.config.outputs.items()
        },
        source=step.spec.source.import_path,
        model_version=model_version,
        model=model,
        artifact_inputs={
            arg: (binding.artifact.response,)
            for arg, binding in bindings.items()
            if isinstance(binding, FromArtifact)
        },
    )


def _validated(step: str, arg: str, annotation: Any, value: Any) -> Any:
    try:
        return pydantic.TypeAdapter(annotation).validate_python(value)
    except pydantic.ValidationError as exc:
        raise DeploymentLoadError(
            f"step '{step}' argument '{arg}': the snapshot's value {value!r} does not match "
            f"its type {annotation!r}: {exc.errors()[0]['msg']}"
        ) from exc


def _hints(function: Callable[..., Any], fallback: Mapping[str, Any]) -> dict[str, Any]:
    """Annotations with their `Annotated` extras kept (capture hints live there)."""
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except Exception:
        return dict(fallback)
    return {arg: hints.get(arg, annotation) for arg, annotation in fallback.items()}


def _load_hook(source: Any) -> Callable[..., Any] | None:
    if source is None:
        return None
    from zenml.utils import source_utils

    hook: Callable[..., Any] = source_utils.load(source)
    return hook


def _pipeline_outputs(snapshot: PipelineSnapshotResponse) -> tuple[PipelineOutput, ...]:
    from zenml.steps.utils import get_unique_step_output_names

    assert snapshot.pipeline_spec is not None
    mapping = get_unique_step_output_names(
        {(o.step_name, o.output_name): o for o in snapshot.pipeline_spec.outputs}
    )
    return tuple(
        PipelineOutput(name=unique, step=step, output=output)
        for (step, output), (_, unique) in mapping.items()
    )
