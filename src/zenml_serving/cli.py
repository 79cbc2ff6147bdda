"""The `zenml-serving` command: snapshot a pipeline, serve a snapshot.

    zenml-serving snapshot my_module:my_pipeline     # prints the snapshot ID
    ZENML_PIPELINE_DEPLOYMENT_ID=<id> zenml-serving serve

Configuration errors end the command with one line on stderr and exit status 2.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import NoReturn

import click

from zenml_serving.config import ConfigError, ServingConfig
from zenml_serving.telemetry.multiproc import prepare_multiprocess_dir

__all__ = ["main"]

_GRANIAN_BACKLOG = 1024


def _fail(message: str) -> NoReturn:
    click.echo(f"zenml-serving: error: {message}", err=True)
    sys.exit(2)


@click.group()
@click.version_option(package_name="zenml-serving")
def main() -> None:
    """Serve ZenML pipeline snapshots in-process over HTTP."""


@main.command()
@click.argument("target")
@click.option("--name", help="Snapshot name (default: <pipeline>-serving, replaced if it exists).")
@click.option(
    "--parameters",
    "parameters_json",
    help="JSON object of values for parameters without a default (served requests must "
    "still give them; the snapshot needs one value to trace the pipeline).",
)
def snapshot(target: str, name: str | None, parameters_json: str | None) -> None:
    """Snapshot TARGET (module:pipeline) into the active ZenML store and print its ID.

    Step code is imported from ZENML_SERVING_SOURCE_ROOT (default: the current folder); serve
    the snapshot from the same folder so the service can import it again.
    """
    try:
        config = ServingConfig.from_env()
    except ConfigError as exc:
        _fail(str(exc))
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        _fail(f"TARGET must look like module:pipeline, got {target!r}")
    root = str(config.source_root)
    if root not in sys.path:
        sys.path.insert(0, root)
    from zenml.pipelines.pipeline_definition import Pipeline
    from zenml.utils import source_utils

    source_utils.set_custom_source_root(root)
    try:
        pipeline = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        _fail(f"cannot import {target} from {root}: {type(exc).__name__}: {exc}")
    if not isinstance(pipeline, Pipeline):
        _fail(f"{target} is a {type(pipeline).__name__}, not a @pipeline")
    if parameters_json:
        try:
            parameters = json.loads(parameters_json)
        except json.JSONDecodeError as exc:
            _fail(f"--parameters is not valid JSON: {exc}")
        if not isinstance(parameters, dict):
            _fail("--parameters must be a JSON object")
        pipeline = pipeline.with_options(parameters=parameters)
    created = pipeline.create_snapshot(name=name or f"{pipeline.name}-serving", replace=True)
    click.echo(str(created.id))


@main.command()
@click.option("--check", is_flag=True, help="Load the snapshot, report problems, do not serve.")
def serve(check: bool) -> None:
    """Serve the snapshot in ZENML_PIPELINE_DEPLOYMENT_ID under granian."""
    try:
        config = ServingConfig.from_env()
    except ConfigError as exc:
        _fail(str(exc))
    if config.deployment_id is None:
        _fail(
            "ZENML_PIPELINE_DEPLOYMENT_ID is not set: set it to the ID that "
            "`zenml-serving snapshot module:pipeline` printed"
        )
    if check:
        from zenml_serving.deployment.loader import DeploymentLoadError, load_served_pipeline

        try:
            served = load_served_pipeline(config.deployment_id, source_root=config.source_root)
        except DeploymentLoadError as exc:
            _fail(str(exc))
        click.echo(f"ok: {served.name} ({len(served.steps)} steps) can be served")
        return
    run_granian(config)


def run_granian(config: ServingConfig) -> None:
    """Serve `zenml_serving.app:create_app` with granian (ASGI, uvloop, graceful shutdown)."""
    from granian import Granian
    from granian.constants import Interfaces, Loops

    from zenml_serving.api.stream_limits import granian_backpressure

    os.environ.setdefault("ZENML_SERVING_SOURCE_ROOT", str(Path(config.source_root)))
    # Before granian starts the workers, which inherit the variable: see telemetry/multiproc.py.
    prepare_multiprocess_dir(config.workers)
    server = Granian(
        "zenml_serving.app:create_app",
        factory=True,
        interface=Interfaces.ASGI,
        address=config.host,
        port=config.port,
        workers=config.workers,
        respawn_failed_workers=True,  # a crashed worker comes back (crash loops still exit)
        loop=Loops.uvloop if sys.platform != "win32" else Loops.asyncio,
        log_access=False,
        workers_kill_timeout=int(config.shutdown_grace_s) + 5,
        # Per worker: room for every admitted stream, every running or queued invocation and
        # the probes (see api/stream_limits.py); granian's default is backlog / workers.
        backpressure=granian_backpressure(config, default=_GRANIAN_BACKLOG // config.workers),
    )
    server.serve()
