"""Pipeline hooks: load the production model once per serving process, release it at the end."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zenml.client import Client
from zenml.logger import get_logger

logger = get_logger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """What every invocation's steps see as `get_step_context().pipeline_state`."""

    model: Any
    version: str


def load_model(model_name: str = "churn", stage: str = "production") -> LoadedModel:
    """Load the `churn-model` artifact of the model version in `stage`."""
    version = Client().get_model_version(model_name, stage)
    artifact = version.get_artifact("churn-model")
    if artifact is None:
        raise LookupError(f"model {model_name} version {version.name} has no churn-model")
    logger.info("loaded %s version %s", model_name, version.name)
    return LoadedModel(model=artifact.load(), version=str(version.name))


def release_model() -> None:
    """Nothing to free for a scikit-learn model; a GPU model would release memory here."""
    logger.info("released the churn model")
