"""A scikit-learn churn model trained by one pipeline and served by another.

`training.py` trains a small classifier on synthetic customer rows and registers it as the
`churn-model` artifact of the ZenML model `churn` (one model version per training run).
`inference.py` serves it three ways, as ZenML users write inference pipelines: an `on_init`
hook that loads the production model once, `Client().get_artifact_version(...)` in the
pipeline body, and the pipeline model's `get_artifact(...)`.
"""
