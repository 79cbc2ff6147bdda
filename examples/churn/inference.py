"""Three inference pipelines serving the `churn` model, written as ZenML users write them.

- `churn_inference`: an `on_init` hook loads the production model once per process; the step
  reads it from `get_step_context().pipeline_state`.
- `churn_inference_by_artifact`: the pipeline body asks the client for the latest
  `churn-model` artifact version and passes it to the step.
- `churn_inference_by_model`: the pipeline's model is `churn` in stage `production`; the body
  passes that version's `churn-model` artifact to the step.
"""

from __future__ import annotations

from typing import Any

from zenml import Model, get_pipeline_context, get_step_context, pipeline, step
from zenml.client import Client

from examples.churn.data import as_row
from examples.churn.hooks import load_model, release_model

EXAMPLE_CUSTOMER = {"tenure_months": 24.0, "support_calls": 2.0, "monthly_charges": 70.0}


def _answer(model: Any, features: dict[str, float], version: str) -> dict[str, Any]:
    probability = float(model.predict_proba(as_row(features))[0][1])
    return {
        "churn_probability": round(probability, 4),
        "churn": probability >= 0.5,
        "model_version": version,
    }


@step
def predict_from_state(features: dict[str, float]) -> dict[str, Any]:
    """Predict with the model the init hook loaded."""
    context = get_step_context()
    loaded = context.pipeline_state
    return _answer(loaded.model, features, loaded.version)


@step
def predict(model: Any, features: dict[str, float]) -> dict[str, Any]:
    """Predict with the model passed in by the pipeline body."""
    context = get_step_context()
    if context.model_version is not None:
        version = str(context.model_version.name)
    else:
        version = str(context.inputs["model"][0].version)
    return _answer(model, features, version)


@pipeline(
    enable_cache=False,
    on_init=load_model,
    on_init_kwargs={"model_name": "churn", "stage": "production"},
    on_cleanup=release_model,
)
def churn_inference(features: dict[str, float] = EXAMPLE_CUSTOMER) -> dict[str, Any]:
    """Churn probability of one customer, from the production model loaded at startup."""
    return predict_from_state(features=features)


@pipeline(enable_cache=False)
def churn_inference_by_artifact(
    features: dict[str, float] = EXAMPLE_CUSTOMER,
) -> dict[str, Any]:
    """Churn probability of one customer, from the latest `churn-model` artifact."""
    model = Client().get_artifact_version("churn-model")
    return predict(model=model, features=features)


@pipeline(enable_cache=False, model=Model(name="churn", version="production"))
def churn_inference_by_model(features: dict[str, float] = EXAMPLE_CUSTOMER) -> dict[str, Any]:
    """Churn probability of one customer, from the production version of the `churn` model."""
    model = get_pipeline_context().model.get_artifact("churn-model")
    return predict(model=model, features=features)
