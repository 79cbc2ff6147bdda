"""Test session setup: a private ZenML store (local SQLite) and snapshot helpers.

The ZenML environment must be set before anything imports ZenML, so it happens here, at the
top of the root conftest, for the whole session.
"""

from __future__ import annotations

import importlib
import os
import tempfile
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
_STORE_DIR = Path(tempfile.mkdtemp(prefix="zenml-serving-tests-"))
os.environ["ZENML_CONFIG_PATH"] = str(_STORE_DIR / "config")
os.environ["ZENML_ANALYTICS_OPT_IN"] = "false"
os.environ["ZENML_LOGGING_VERBOSITY"] = "WARN"
os.environ["ZENML_ENABLE_RICH_TRACEBACK"] = "false"
os.environ["ZENML_SERVING_SOURCE_ROOT"] = str(REPO_ROOT)
os.environ.pop("ZENML_PIPELINE_DEPLOYMENT_ID", None)
os.environ.pop("ZENML_STORE_URL", None)

import pytest  # noqa: E402

_SNAPSHOTS: dict[str, uuid.UUID] = {}


def snapshot_of(target: str, **parameters: object) -> uuid.UUID:
    """Snapshot `module:pipeline` into the session store once and return the snapshot ID.

    `parameters` give values to parameters without a default (needed to snapshot at all).
    """
    if target not in _SNAPSHOTS:
        _SNAPSHOTS[target] = new_snapshot(target, **parameters)
    return _SNAPSHOTS[target]


def new_snapshot(target: str, **parameters: object) -> uuid.UUID:
    """A snapshot of `module:pipeline` of its own (not shared with other tests): for tests
    that attach a ZenML deployment to it (ZenML keeps one deployment per snapshot)."""
    from zenml.utils import source_utils

    source_utils.set_custom_source_root(str(REPO_ROOT))
    module_name, _, attribute = target.partition(":")
    pipeline = getattr(importlib.import_module(module_name), attribute)
    if parameters:
        pipeline = pipeline.with_options(parameters=parameters)
    return pipeline.create_snapshot(name=f"{pipeline.name}-{uuid.uuid4().hex[:8]}").id


@pytest.fixture(scope="session")
def zenml_store_env() -> dict[str, str]:
    """The environment a subprocess needs to reach the session's ZenML store."""
    keys = (
        "ZENML_CONFIG_PATH",
        "ZENML_ANALYTICS_OPT_IN",
        "ZENML_LOGGING_VERBOSITY",
        "ZENML_ENABLE_RICH_TRACEBACK",
        "ZENML_SERVING_SOURCE_ROOT",
    )
    return {k: os.environ[k] for k in keys}
