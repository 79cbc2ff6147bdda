"""Model versions and artifacts the pipeline body asks for, resolved and loaded once at startup.

ZenML resolves these per orchestrated run: `Client().get_artifact_version(...)` in a pipeline
body becomes a `ClientLazyLoader`, `Model(...).get_artifact(...)` and
`get_pipeline_context().model.get_artifact(...)` become `ModelVersionDataLazyLoader`s, and an
`ExternalArtifact` names an artifact version by ID. A served pipeline resolves each once, loads
the artifact with its own materializer, and pins the result: every invocation gets the same
object (a reload resolves them again). Anything that cannot be resolved or loaded stops startup
with a message naming the step, the argument and the artifact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from zenml_serving.deployment.model import (
    FromArtifact,
    FromLiteral,
    LoadedArtifact,
    LoadedModelVersion,
)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from uuid import UUID

    from zenml.client import Client
    from zenml.config.step_configurations import Step
    from zenml.model.model import Model

__all__ = ["ArtifactLoadError", "ArtifactResolver"]


class ArtifactLoadError(RuntimeError):
    """An artifact or model version could not be resolved or loaded; the message names it."""


class ArtifactResolver:
    """Resolves one snapshot's artifacts and model versions, each store object once."""

    def __init__(self, client: Client, loaded: Mapping[UUID, Any] | None = None) -> None:
        """`loaded`: objects already loaded for some artifact versions (reused as they are)."""
        self._client = client
        self._models: dict[tuple[str, str], LoadedModelVersion] = {}
        self._values: dict[Any, Any] = dict(loaded or {})
        self._artifacts: dict[Any, LoadedArtifact] = {}
        self._responses: dict[Any, Any] = {}

    @property
    def artifacts(self) -> tuple[LoadedArtifact, ...]:
        """Every artifact loaded so far, in the order first asked for."""
        return tuple(self._artifacts.values())

    @property
    def model_versions(self) -> tuple[LoadedModelVersion, ...]:
        """Every model version resolved so far, in the order first asked for."""
        return tuple(self._models.values())

    def model_version(self, model: Model | None) -> LoadedModelVersion | None:
        """The store's version of a configured `Model`; None when it names no version (ZenML
        would create a new version per run, which a served pipeline does not do)."""
        if model is None or model.version is None:
            return None
        version = model.version
        key = (model.name, str(getattr(version, "value", version)))
        if key not in self._models:
            try:
                response = self._client.get_model_version(model.name, version)
            except KeyError:
                raise ArtifactLoadError(
                    f"model '{model.name}' has no version '{key[1]}' in the ZenML store"
                ) from None
            except Exception as exc:
                raise ArtifactLoadError(
                    f"cannot read model '{model.name}' version '{key[1]}' "
                    f"({type(exc).__name__}: {exc})"
                ) from exc
            self._models[key] = LoadedModelVersion(
                id=response.id,
                model=response.model.name,
                version=str(response.name),
                number=response.number,
                stage=str(response.stage) if response.stage else None,
                response=response,
                model_object=response.to_model_class(),
            )
        return self._models[key]

    def step_bindings(
        self, step_name: str, step: Step, model_version: LoadedModelVersion | None
    ) -> dict[str, FromArtifact | FromLiteral]:
        """The bindings of the step's arguments that come from lazy loaders or external
        artifacts, loaded now. `model_version` is the step's (or pipeline's) model version."""
        from zenml.models import ArtifactVersionResponse

        config = step.config
        bindings: dict[str, FromArtifact | FromLiteral] = {}
        for arg, external in config.external_input_artifacts.items():
            where = f"step '{step_name}' argument '{arg}' (ExternalArtifact)"
            response = self._call(where, external.get_artifact_version_id)
            response = self._call(where, lambda r=response: self._client.get_artifact_version(r))
            bindings[arg] = self._bind(where, response, "external", f"{step_name}.{arg}", None)
        for arg, lazy_model in config.model_artifacts_or_metadata.items():
            where = f"step '{step_name}' argument '{arg}' (model '{lazy_model.model_name}')"
            version = model_version
            if lazy_model.model_version is not None:
                from zenml.model.model import Model

                version = self._call(
                    where,
                    lambda m=lazy_model: self.model_version(
                        Model(name=m.model_name, version=m.model_version)
                    ),
                )
            if version is None or version.model != lazy_model.model_name:
                raise ArtifactLoadError(
                    f"{where}: the pipeline has no model version to load it from; give the "
                    f"pipeline's Model a version or stage (e.g. Model(name="
                    f"'{lazy_model.model_name}', version='production'))"
                )
            if lazy_model.artifact_name is None:
                metadata = version.response.run_metadata or {}
                if lazy_model.metadata_name not in metadata:
                    raise ArtifactLoadError(
                        f"{where}: model version {version.version} has no metadata "
                        f"'{lazy_model.metadata_name}'"
                    )
                bindings[arg] = FromLiteral(metadata[lazy_model.metadata_name])
                continue
            response = self._call(
                where,
                lambda m=lazy_model, v=version: v.response.get_artifact(
                    m.artifact_name, m.artifact_version
                ),
            )
            if response is None:
                raise ArtifactLoadError(
                    f"{where}: model '{version.model}' version '{version.version}' has no "
                    f"artifact '{lazy_model.artifact_name}'"
                    + (
                        f" version '{lazy_model.artifact_version}'"
                        if lazy_model.artifact_version
                        else ""
                    )
                )
            if lazy_model.metadata_name is not None:
                metadata = response.run_metadata or {}
                if lazy_model.metadata_name not in metadata:
                    raise ArtifactLoadError(
                        f"{where}: artifact '{response.name}' version {response.version} has "
                        f"no metadata '{lazy_model.metadata_name}'"
                    )
                bindings[arg] = FromLiteral(metadata[lazy_model.metadata_name])
                continue
            bindings[arg] = self._bind(where, response, "model", f"{step_name}.{arg}", version)
        for arg, lazy_call in config.client_lazy_loaders.items():
            where = f"step '{step_name}' argument '{arg}' (Client().{lazy_call.method_name})"
            value = self._call(where, lazy_call.evaluate)
            if isinstance(value, ArtifactVersionResponse):
                bindings[arg] = self._bind(where, value, "client", f"{step_name}.{arg}", None)
            else:
                bindings[arg] = FromLiteral(value)
        return bindings

    def _bind(
        self,
        where: str,
        response: Any,
        via: Literal["client", "model", "external"],
        consumer: str,
        model_version: LoadedModelVersion | None,
    ) -> FromArtifact:
        key = response.id
        if key not in self._artifacts:
            if key not in self._values:
                self._values[key] = self._call(
                    f"{where}: loading artifact '{response.name}' version {response.version}",
                    response.load,
                )
            self._artifacts[key] = LoadedArtifact(
                id=response.id,
                name=response.name,
                version=str(response.version),
                via=via,
                consumers=(consumer,),
                model_version=model_version,
                response=response,
            )
        else:
            known = self._artifacts[key]
            self._artifacts[key] = LoadedArtifact(
                id=known.id,
                name=known.name,
                version=known.version,
                via=known.via,
                consumers=(*known.consumers, consumer),
                model_version=known.model_version,
                response=known.response,
            )
        return FromArtifact(value=self._values[key], artifact=self._artifacts[key])

    @staticmethod
    def _call(where: str, function: Any) -> Any:
        try:
            return function()
        except ArtifactLoadError:
            raise
        except KeyError as exc:
            raise ArtifactLoadError(f"{where}: not found in the ZenML store ({exc})") from exc
        except Exception as exc:
            raise ArtifactLoadError(f"{where}: {type(exc).__name__}: {exc}") from exc
