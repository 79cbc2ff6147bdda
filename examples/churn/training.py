"""The training pipeline: each run registers a new version of the ZenML model `churn`.

python -m examples.churn.training --rows 400 --seed 1
"""

from __future__ import annotations

import argparse
from typing import Annotated

from sklearn.linear_model import LogisticRegression
from zenml import ArtifactConfig, Model, log_metadata, pipeline, step
from zenml.enums import ArtifactType

from examples.churn.data import customers

MODEL_NAME = "churn"
ARTIFACT_NAME = "churn-model"


@step
def train(
    rows: int, seed: int
) -> Annotated[
    LogisticRegression, ArtifactConfig(name=ARTIFACT_NAME, artifact_type=ArtifactType.MODEL)
]:
    """Fit a logistic regression on `rows` synthetic customers."""
    features, churned = customers(rows, seed)
    model = LogisticRegression(max_iter=500).fit(features, churned)
    log_metadata({"training_accuracy": float(model.score(features, churned)), "rows": rows})
    return model


@pipeline(model=Model(name=MODEL_NAME, description="Churn classifier (examples/churn)"))
def churn_training(rows: int = 400, seed: int = 1) -> None:
    """Train the churn classifier and register it as a new model version."""
    train(rows=rows, seed=seed)


def main() -> None:
    """Run the training pipeline once and print the model version it created."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    run = churn_training(rows=args.rows, seed=args.seed)
    assert run is not None
    version = run.model_version
    print(f"trained {MODEL_NAME} version {version.name if version else '?'}")


if __name__ == "__main__":
    main()
