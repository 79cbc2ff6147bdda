"""Which ZenML pipeline settings an in-process service honours, read once from the snapshot.

`environment` is applied to the process; `ResourceSettings.max_concurrency` becomes the default
concurrency limit; `DeploymentSettings`' app title, description and version name the OpenAPI
document; `extra["serving_step_concurrency"]` (an integer >= 1; 1 opts out) becomes the
default of ZENML_SERVING_STEP_CONCURRENCY. The other `DeploymentSettings` fields configure
ZenML's own FastAPI server (its URL paths, middlewares, custom endpoints, dashboard files,
uvicorn...): they cannot apply here, so they are listed in `ignored` and the service warns
about each at startup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zenml_serving.deployment.features import UnsupportedFeatureError
from zenml_serving.deployment.model import ServingSettings

if TYPE_CHECKING:
    from zenml.config.pipeline_configurations import PipelineConfiguration

__all__ = ["read_settings"]

_APP_FIELDS = ("app_title", "app_description", "app_version")
STEP_CONCURRENCY_KEY = "serving_step_concurrency"


def read_settings(configuration: PipelineConfiguration) -> ServingSettings:
    """The serving-relevant parts of the pipeline's `environment` and `settings`."""
    deployment = _fields(configuration.settings.get("deployment"))
    resources = _fields(configuration.settings.get("resources"))
    max_concurrency = resources.get("max_concurrency")
    return ServingSettings(
        environment={k: str(v) for k, v in (configuration.environment or {}).items()},
        max_concurrency=int(max_concurrency) if max_concurrency else None,
        step_concurrency=_step_concurrency((configuration.extra or {}).get(STEP_CONCURRENCY_KEY)),
        app_title=deployment.get("app_title"),
        app_description=deployment.get("app_description"),
        app_version=deployment.get("app_version"),
        ignored=tuple(
            sorted(f"DeploymentSettings.{k}" for k in deployment if k not in _APP_FIELDS)
        ),
    )


def _step_concurrency(value: Any) -> int | None:
    """The pipeline's own limit of steps running at once in one invocation, checked."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UnsupportedFeatureError(
            f'pipeline extra "{STEP_CONCURRENCY_KEY}" must be an integer >= 1 (1: steps one '
            f"after another), got {value!r}"
        )
    return value


def _fields(settings: Any) -> dict[str, Any]:
    """The fields a user set (a settings object or its dict form in the snapshot)."""
    if settings is None:
        return {}
    if hasattr(settings, "model_dump"):
        return dict(settings.model_dump(exclude_unset=True))
    return dict(settings)
