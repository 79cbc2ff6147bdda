"""Integration fixtures: real snapshots in the session's ZenML store, loaded in-process."""

from __future__ import annotations

from functools import cache

from tests.conftest import REPO_ROOT, snapshot_of
from zenml_serving.deployment.loader import load_served_pipeline
from zenml_serving.deployment.model import ServedPipeline


@cache
def served(target: str) -> ServedPipeline:
    """`module:pipeline` snapshotted into the session store and loaded (once per session)."""
    return load_served_pipeline(snapshot_of(target), source_root=REPO_ROOT)
