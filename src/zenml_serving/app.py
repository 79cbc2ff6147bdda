"""create_app: the one place that wires the service together.

`granian --interface asgi --factory zenml_serving.app:create_app` calls it with no arguments:
configuration comes from the environment and the snapshot is loaded from the ZenML store.
Tests pass a ServingConfig and, where they need to, a ServedPipeline built from plain
functions.
"""

from __future__ import annotations

import asyncio
import gc
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import structlog
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.plugins.problem_details import ProblemDetailsConfig, ProblemDetailsPlugin

from zenml_serving import __version__
from zenml_serving.api.context import AppContext
from zenml_serving.api.errors import PROBLEM_MAP
from zenml_serving.api.invoke import invoke
from zenml_serving.api.jobs import cancel_job, get_job, list_jobs
from zenml_serving.api.metrics import metrics
from zenml_serving.api.ops import health, info, livez, status
from zenml_serving.api.request_limits import STATE_KEY, ParameterLimits
from zenml_serving.api.schemas import build_invoke_request_model
from zenml_serving.api.security import BearerKeyMiddleware, add_security_headers, cors_config
from zenml_serving.api.streaming import stream_job, stream_socket
from zenml_serving.capture import (
    CaptureConfigError,
    CaptureDefaults,
    CapturePlan,
    InvocationCapture,
    build_capture_plan,
)
from zenml_serving.config import ConfigError, ServingConfig
from zenml_serving.deployment.loader import DeploymentLoadError, load_served_pipeline
from zenml_serving.engine.engine import DirectExecutionEngine
from zenml_serving.execution.backends import build_backend
from zenml_serving.execution.manager import ServingExecutionManager
from zenml_serving.loop_monitor import LoopLagMonitor
from zenml_serving.playground import playground_handlers
from zenml_serving.shutdown import DrainSignals
from zenml_serving.telemetry.logging import configure_logging
from zenml_serving.telemetry.service import Telemetry
from zenml_serving.tracking.builder import build_run_record
from zenml_serving.tracking.listener import TrackingListener
from zenml_serving.tracking.process import WriterProcess
from zenml_serving.tracking.recorder import ZenStoreRecorder
from zenml_serving.tracking.sink import ProcessSink
from zenml_serving.tracking.writer import TrackingWriter

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence

    from zenml_serving.deployment.model import ServedPipeline
    from zenml_serving.execution.invocation import Invocation, InvocationListener
    from zenml_serving.tracking.capture import CapturedInvocation

__all__ = ["create_app"]

_log = structlog.stdlib.get_logger(__name__)


def create_app(
    config: ServingConfig | None = None,
    *,
    served_pipeline: ServedPipeline | None = None,
    listeners: Sequence[InvocationListener] = (),
    telemetry: Telemetry | None = None,
) -> Litestar:
    """Build the Litestar app for one served pipeline (loading it from the store if not given).

    Called with no arguments (granian's `--factory`), a configuration or snapshot problem ends
    the worker with one log line saying what to do and exit status 2, not a traceback.
    `telemetry` defaults to one built from `config` (tracing, metrics, logging); tests pass
    their own (e.g. with an in-memory span exporter).
    """
    if config is None:
        try:
            return create_app(
                ServingConfig.from_env(),
                served_pipeline=served_pipeline,
                listeners=listeners,
                telemetry=telemetry,
            )
        except (ConfigError, DeploymentLoadError, CaptureConfigError) as exc:
            configure_logging()
            _log.error("startup_failed", error=str(exc))
            raise SystemExit(2) from None
    # Built here, i.e. in each granian worker: tracer providers must not cross a fork.
    telemetry = telemetry if telemetry is not None else Telemetry(config)
    telemetry.configure_logging()
    if served_pipeline is None:
        served_pipeline = _load(config)
        telemetry.configure_logging()  # again: importing ZenML replaced the handlers

    capture_plan = build_capture_plan(served_pipeline, CaptureDefaults.from_config(config))
    telemetry.declare_redact(capture_plan.redact)
    telemetry_listener = telemetry.listener(served_pipeline, capture_plan)
    tracking = _tracking(
        config, served_pipeline, capture_plan, on_drop=telemetry.count_tracking_drops
    )
    listeners = [
        *listeners,
        *([telemetry_listener] if telemetry_listener is not None else []),
        *([tracking[1]] if tracking is not None else []),
    ]

    backend = build_backend(config, served_pipeline.snapshot_id)
    manager = ServingExecutionManager(
        DirectExecutionEngine(served_pipeline),
        jobs=backend.jobs,
        events=backend.events,
        max_concurrency=config.max_concurrency,
        max_queue_size=config.max_queue_size,
        request_timeout_s=config.request_timeout_s,
        shutdown_grace_s=config.shutdown_grace_s,
        listeners=listeners,
        on_outcome=telemetry.count_outcome,
    )
    invoke_request_model = build_invoke_request_model(served_pipeline.parameters_model)
    context = AppContext(
        config=config,
        pipeline=served_pipeline,
        manager=manager,
        invoke_request_model=invoke_request_model,
        capture_plan=capture_plan,
        loop_monitor=LoopLagMonitor(),
        tracking=tracking[0] if tracking is not None else None,
    )

    def drain() -> None:
        context.ready = False
        manager.begin_drain()

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        if tracking is not None:
            tracking[0].start()
        await manager.start()
        await telemetry.start(manager, tracking[0] if tracking is not None else None)
        signals = DrainSignals(drain)
        signals.install()
        _freeze_startup_heap()
        context.loop_monitor.start()  # after the freeze: its pause is startup, not lag
        context.ready = True
        _log.info(
            "service_ready",
            pipeline=served_pipeline.name,
            snapshot_id=str(served_pipeline.snapshot_id),
            steps=len(served_pipeline.steps),
            max_concurrency=config.max_concurrency,
            max_queue_size=config.max_queue_size,
        )
        try:
            yield
        finally:
            context.ready = False
            await manager.stop()
            await context.loop_monitor.stop()
            signals.remove()
            if tracking is not None:
                await asyncio.to_thread(tracking[0].stop, config.shutdown_grace_s)
            await telemetry.stop()
            _log.info("service_stopped")

    app = Litestar(
        route_handlers=[
            invoke,
            list_jobs,
            get_job,
            cancel_job,
            stream_job,
            stream_socket,
            health,
            livez,
            info,
            status,
            *playground_handlers(),
            *([metrics] if config.metrics_enabled else []),
        ],
        dependencies={"ctx": Provide(lambda: context, use_cache=True, sync_to_thread=False)},
        state=State({STATE_KEY: ParameterLimits.from_config(config)}),
        middleware=(
            [BearerKeyMiddleware(config.auth_key, guard_metrics=config.metrics_auth)]
            if config.auth_key is not None
            else []
        ),
        cors_config=cors_config(config),
        before_send=[add_security_headers],
        request_max_body_size=config.max_request_bytes,
        signature_namespace={"InvokeRequest": invoke_request_model},
        lifespan=[lifespan],
        plugins=[
            ProblemDetailsPlugin(
                ProblemDetailsConfig(
                    enable_for_all_http_exceptions=True,
                    exception_to_problem_detail_map=PROBLEM_MAP,
                )
            ),
        ],
        openapi_config=OpenAPIConfig(
            title=f"zenml-serving: {served_pipeline.name}",
            version=__version__,
            description=(
                f"Serves snapshot {served_pipeline.snapshot_id} of ZenML pipeline "
                f"'{served_pipeline.name}' in-process."
            ),
        ),
        logging_config=None,  # logging is ours (telemetry/logging.py), not Litestar's default
        debug=False,
    )
    telemetry.install(app)  # outermost: traces and counts the status that really leaves
    return app


def _freeze_startup_heap() -> None:
    """Everything loaded so far (ZenML, the step code: ~300k objects) lives as long as the
    process: take it out of the garbage collector's sight, so that full collections stop
    walking it on the request path."""
    gc.collect()
    gc.freeze()


def _tracking(
    config: ServingConfig,
    pipeline: ServedPipeline,
    plan: CapturePlan,
    *,
    on_drop: Callable[[str, int], None] | None = None,
) -> tuple[TrackingWriter, TrackingListener] | None:
    """The ZenML run tracking writer and listener, unless runs are off or there is no store."""
    if not config.create_runs or pipeline.project_id is None:
        return None
    writer: TrackingWriter
    if config.tracking_writer == "process":
        process = WriterProcess()
        writer = TrackingWriter(
            write_batch=ProcessSink(process),
            max_queue=config.tracking_queue_size,
            on_drop=on_drop,
            on_start=process.start,
            on_stop=process.stop,
        )
    else:
        recorder = ZenStoreRecorder()

        def write(captured: CapturedInvocation) -> None:
            recorder.write(build_run_record(captured))

        writer = TrackingWriter(
            write, max_queue=config.tracking_queue_size, duty=config.tracking_duty, on_drop=on_drop
        )

    def resolve(invocation: Invocation) -> InvocationCapture:
        if invocation.capture is not None:
            return invocation.capture
        return plan.resolve(invocation.id, invocation.capture_override)

    return writer, TrackingListener(pipeline, writer, resolve)


def _load(config: ServingConfig) -> ServedPipeline:
    if config.deployment_id is None:
        raise ConfigError(
            "ZENML_PIPELINE_DEPLOYMENT_ID",
            None,
            "required: the ID of the snapshot to serve (`zenml-serving snapshot "
            "module:pipeline` prints one)",
        )
    return load_served_pipeline(config.deployment_id, source_root=config.source_root)
