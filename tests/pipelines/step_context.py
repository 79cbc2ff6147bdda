"""Pipelines that use ZenML's step-time features: hooks, the step context, metadata, settings."""

from __future__ import annotations

import os
from typing import Any

from zenml import get_step_context, log_metadata, pipeline, step
from zenml.config import DeploymentSettings
from zenml.config.resource_settings import ResourceSettings

CANARY = "sk-live-7f3a9c1e5b2d4f6a8c0e2b4d6f8a0c2e"


def make_state(greeting: str, times: int = 1) -> dict[str, Any]:
    """on_init: the pipeline state every invocation's steps see (reads the pipeline env)."""
    return {
        "greeting": greeting * times,
        "pid": os.getpid(),
        "env": os.environ.get("STEP_CONTEXT_TEST_ENV"),
    }


def write_cleanup_marker() -> None:
    """on_cleanup: append a line to the file named by STEP_CONTEXT_CLEANUP_FILE, if set."""
    path = os.environ.get("STEP_CONTEXT_CLEANUP_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as marker:
            marker.write(f"cleanup {os.getpid()}\n")


def broken_init() -> None:
    """on_init that cannot load what it needs."""
    raise FileNotFoundError("model.pkl is missing")


@step
def describe_context(name: str) -> dict[str, Any]:
    """What get_step_context() tells a served step; logs metadata (one key is secret)."""
    context = get_step_context()
    log_metadata({"greeted": name, "api_key": CANARY, "length": len(name)})
    return {
        "text": f"{context.pipeline_state['greeting']}, {name}",
        "state_pid": context.pipeline_state["pid"],
        "pid": os.getpid(),
        "env": context.pipeline_state["env"],
        "step_name": context.step_name,
        "pipeline": context.pipeline.name,
        "run_id": str(context.pipeline_run.id),
        "run_name": context.pipeline_run.name,
    }


@pipeline(
    enable_cache=False,
    on_init=make_state,
    on_init_kwargs={"greeting": "hello", "times": 1},
    on_cleanup=write_cleanup_marker,
    environment={"STEP_CONTEXT_TEST_ENV": "from-the-pipeline"},
    settings={
        "deployment": DeploymentSettings(
            app_title="Greeter",
            app_description="Greets people from a pipeline state",
            app_version="2.1.0",
            dashboard_files_path="frontend",
        ),
        "resources": ResourceSettings(max_concurrency=3),
    },
)
def context_pipeline(name: str = "world") -> dict[str, Any]:
    """One step that reports its step context."""
    return describe_context(name=name)


@step
def wants_output_uri(value: int) -> str:
    """Asks for something that needs a stored output artifact."""
    return get_step_context().get_output_artifact_uri()


@pipeline(enable_cache=False)
def output_uri_pipeline(value: int = 1) -> str:
    """A step that calls what a served step cannot have."""
    return wants_output_uri(value=value)


@step
def greet(name: str) -> str:
    """Says hello."""
    return f"hello {name}"


@pipeline(enable_cache=False, on_init=broken_init)
def broken_init_pipeline(name: str = "world") -> str:
    """Its on_init raises."""
    return greet(name=name)


@step
def lookup(table: dict[str, int], key: str) -> int:
    """Reads a table loaded at startup."""
    return table[key]


@pipeline(enable_cache=False)
def external_artifact_pipeline(key: str = "a") -> int:
    """A step fed an ExternalArtifact (uploaded when the snapshot is made, then by ID)."""
    from zenml import ExternalArtifact

    table = ExternalArtifact(value={"a": 1, "b": 2})
    return lookup(table=table, key=key)
