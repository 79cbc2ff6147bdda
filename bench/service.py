"""Starting zenml-serving for a benchmark: the local store's environment, snapshots, targets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dev import local_store_env

from bench.targets import Target

__all__ = ["ROOT", "base_env", "serving_target", "snapshot"]

ROOT = Path(__file__).resolve().parent.parent


def base_env() -> dict[str, str]:
    """The environment every server starts with: dev.py's (the local store, quiet ZenML)."""
    return local_store_env()


def snapshot(pipeline: str, name: str) -> str:
    """Snapshot `module:pipeline` into the local store (replacing `name`) and return its ID."""
    done = subprocess.run(
        [sys.executable, "-m", "zenml_serving", "snapshot", pipeline, "--name", name],
        cwd=ROOT,
        env=base_env(),
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.stdout.split()[-1]


def serving_target(snapshot_id: str, name: str, description: str, **env: str) -> Target:
    """`zenml-serving serve` (granian) for `snapshot_id` on a free loopback port."""
    return Target(
        name=name,
        argv=(sys.executable, "-m", "zenml_serving", "serve"),
        description=description,
        env={
            "ZENML_PIPELINE_DEPLOYMENT_ID": snapshot_id,
            "ZENML_SERVICE_HOST": "127.0.0.1",
            "ZENML_SERVICE_PORT": "{port}",
            **env,
        },
    )
