"""create_app: the one place that wires the service together.

`granian --interface asgi --factory zenml_serving.app:create_app` calls it with no arguments:
configuration comes from the environment and the snapshot is loaded from the ZenML store.
`uvicorn zenml_serving.app:app` (or granian without `--factory`) takes `app`, which does the
same on its first call, in the worker that serves it. Tests pass a ServingConfig and, where
they need to, a ServedPipeline built from plain functions.
"""

from __future__ import annotations

import asyncio
import gc
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import structlog
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.plugins.problem_details import ProblemDetailsConfig, ProblemDetailsPlugin

from zenml_serving import __version__
from zenml_serving.api.admin import reload
from zenml_serving.api.context import AppContext, DeploymentIdentity
from zenml_serving.api.errors import PROBLEM_MAP
from zenml_serving.api.head import HeadAsGet
from zenml_serving.api.invoke import CONTEXT_STATE_KEY, invoke
from zenml_serving.api.jobs import cancel_job, get_job, list_jobs
from zenml_serving.api.metrics import metrics
from zenml_serving.api.ops import health, info, livez, status
from zenml_serving.api.request_limits import STATE_KEY, ParameterLimits
from zenml_serving.api.schemas import (
    build_invoke_request_model,
    build_zenml_invoke_request_model,
)
from zenml_serving.api.security import BearerKeyMiddleware, add_security_headers, cors_config
from zenml_serving.api.stream_limits import StreamAdmission, StreamLimits
from zenml_serving.api.streaming import OpenSockets, stream_job, stream_socket
from zenml_serving.api.zenml_api import invoke_zenml, submit_zenml, zenml_docs
from zenml_serving.capture import (
    CaptureConfigError,
    CaptureDefaults,
    CapturePlan,
    InvocationCapture,
    build_capture_plan,
)
from zenml_serving.config import ConfigError, ServingConfig
from zenml_serving.deployment.hooks import HookFailedError
from zenml_serving.deployment.loader import DeploymentLoadError, load_served_pipeline
from zenml_serving.deployment.parameters import relaxed_parameters_model
from zenml_serving.engine.engine import DirectExecutionEngine
from zenml_serving.execution.backends import build_backend
from zenml_serving.execution.manager import ServingExecutionManager
from zenml_serving.loop_monitor import LoopLagMonitor
from zenml_serving.playground import playground_handlers
from zenml_serving.served_versions import VersionLifecycle
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
    from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
    from contextlib import AbstractAsyncContextManager

    import pydantic

    from zenml_serving.deployment.model import ServedPipeline
    from zenml_serving.execution.invocation import Invocation, InvocationListener
    from zenml_serving.tracking.capture import CapturedInvocation

__all__ = ["app", "create_app"]

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
        except (ConfigError, DeploymentLoadError, CaptureConfigError, HookFailedError) as exc:
            configure_logging()
            _log.error("startup_failed", error=str(exc))
            raise SystemExit(2) from None
    # Built here, i.e. in each granian worker: tracer providers must not cross a fork.
    telemetry = telemetry if telemetry is not None else Telemetry(config)
    telemetry.configure_logging()
    lifecycle = _start_versions(config, served_pipeline, telemetry)
    config = lifecycle.config
    served_pipeline = lifecycle.versions.current.pipeline

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
        DirectExecutionEngine(
            lifecycle.versions,
            records_runs=tracking is not None,
            step_concurrency=config.step_concurrency,
            max_invocations=config.max_concurrency,
        ),
        jobs=backend.jobs,
        events=backend.events,
        max_concurrency=config.max_concurrency,
        max_queue_size=config.max_queue_size,
        request_timeout_s=config.request_timeout_s,
        shutdown_grace_s=config.shutdown_grace_s,
        listeners=listeners,
        on_outcome=telemetry.count_outcome,
        max_job_bytes=config.max_job_bytes,
    )
    invoke_request_model = _invoke_request_model(config, served_pipeline)
    context = AppContext(
        config=config,
        pipeline=served_pipeline,
        manager=manager,
        invoke_request_model=invoke_request_model,
        capture_plan=capture_plan,
        loop_monitor=LoopLagMonitor(),
        sockets=OpenSockets(),
        streams=StreamLimits.from_config(config),
        versions=lifecycle.versions,
        reloader=lifecycle.reloader,
        tracking=tracking[0] if tracking is not None else None,
        deployment=DeploymentIdentity(
            str(served_pipeline.deployment_id) if served_pipeline.deployment_id else None,
            served_pipeline.deployment_name,
        ),
    )

    lifespan = _lifespan(config, context, lifecycle, telemetry, tracking[0] if tracking else None)

    app = Litestar(
        route_handlers=[
            *(
                [invoke_zenml, submit_zenml, zenml_docs]
                if config.api_style == "zenml"
                else [invoke]
            ),
            list_jobs,
            get_job,
            cancel_job,
            stream_job,
            stream_socket,
            health,
            livez,
            info,
            status,
            reload,
            *playground_handlers(),
            *([metrics] if config.metrics_enabled else []),
        ],
        dependencies={"ctx": Provide(lambda: context, use_cache=True, sync_to_thread=False)},
        state=State({STATE_KEY: ParameterLimits.from_config(config), CONTEXT_STATE_KEY: context}),
        middleware=[
            *(
                [BearerKeyMiddleware(config.auth_key, guard_metrics=config.metrics_auth)]
                if config.auth_key is not None
                else []
            ),
            StreamAdmission(context.streams),
        ],
        cors_config=cors_config(config),
        before_send=[add_security_headers],
        request_max_body_size=config.max_request_bytes,
        signature_namespace={
            "InvokeRequest": invoke_request_model,
            "ZenMLInvokeRequest": invoke_request_model,
        },
        lifespan=[lifespan, *_self_registration(config, served_pipeline, context)],
        plugins=[
            ProblemDetailsPlugin(
                ProblemDetailsConfig(
                    enable_for_all_http_exceptions=True,
                    exception_to_problem_detail_map=PROBLEM_MAP,
                )
            ),
        ],
        openapi_config=_openapi_config(served_pipeline),
        logging_config=None,  # logging is ours (telemetry/logging.py), not Litestar's default
        debug=False,
    )
    app.asgi_handler = HeadAsGet(app.asgi_handler)
    telemetry.install(app)  # outermost: traces and counts the status that really leaves
    return app


def _lifespan(
    config: ServingConfig,
    context: AppContext,
    lifecycle: VersionLifecycle,
    telemetry: Telemetry,
    writer: TrackingWriter | None,
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """The app's lifespan: everything long-lived starts before the service turns ready and
    stops after the drain (which a signal or the end of the lifespan starts)."""
    manager = context.manager
    served_pipeline = context.pipeline

    def drain() -> None:
        context.ready = False
        manager.begin_drain()
        context.sockets.going_away()

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        if writer is not None:
            writer.start()
        await manager.start()
        await telemetry.start(manager, writer)
        signals = DrainSignals(drain, farewell=context.sockets.farewell)
        signals.install()
        _freeze_startup_heap()
        context.loop_monitor.start()  # after the freeze: its pause is startup, not lag
        lifecycle.start()
        context.ready = True
        _log.info(
            "service_ready",
            pipeline=served_pipeline.name,
            snapshot_id=str(served_pipeline.snapshot_id),
            steps=len(served_pipeline.steps),
            max_concurrency=config.max_concurrency,
            max_queue_size=config.max_queue_size,
            on_init_s=lifecycle.init_duration_s,
        )
        try:
            yield
        finally:
            drain()  # no-op when a signal already started it
            await manager.stop()
            await lifecycle.stop()  # after the drain: on_cleanup
            await context.loop_monitor.stop()
            signals.remove()
            if writer is not None:
                await asyncio.to_thread(writer.stop, config.shutdown_grace_s)
            await telemetry.stop()
            _log.info("service_stopped")

    return lifespan


def _openapi_config(served_pipeline: ServedPipeline) -> OpenAPIConfig:
    return OpenAPIConfig(
        # The document only (also at `/schema`): the HTML viewers load their scripts from
        # public CDNs, which the security headers forbid, so they never rendered.
        render_plugins=[JsonRenderPlugin()],
        # DeploymentSettings' app title, version and description, when the pipeline has them.
        title=served_pipeline.settings.app_title or f"zenml-serving: {served_pipeline.name}",
        version=served_pipeline.settings.app_version or __version__,
        description=served_pipeline.settings.app_description
        or (
            f"Serves snapshot {served_pipeline.snapshot_id} of ZenML pipeline "
            f"'{served_pipeline.name}' in-process."
        ),
    )


def _start_versions(
    config: ServingConfig, pipeline: ServedPipeline | None, telemetry: Telemetry
) -> VersionLifecycle:
    """Load the pipeline (unless given) and build version 1. on_init runs here, in each
    worker, before the app exists: /health cannot answer until the pipeline state is ready,
    and a raising hook ends startup like a bad snapshot."""
    started = time.perf_counter()
    if pipeline is None:
        pipeline = _load(config)
        telemetry.configure_logging()  # again: importing ZenML replaced the handlers
    return VersionLifecycle(
        config,
        pipeline,
        load=lambda current: _load(config, reuse=current),
        load_duration_s=time.perf_counter() - started,
    )


def _invoke_request_model(
    config: ServingConfig, pipeline: ServedPipeline
) -> type[pydantic.BaseModel]:
    """The invoke body: ours (strict types), or ZenML's (`ZENML_SERVING_API=zenml`)."""
    if config.api_style == "zenml":
        return build_zenml_invoke_request_model(relaxed_parameters_model(pipeline.parameters_model))
    return build_invoke_request_model(pipeline.parameters_model)


def _self_registration(
    config: ServingConfig, pipeline: ServedPipeline, context: AppContext
) -> list[Callable[[Litestar], AbstractAsyncContextManager[None]]]:
    """A lifespan keeping the deployment record (ZENML_SERVING_DEPLOYMENT_NAME), if set: it
    enters once the service is ready and leaves before the manager stops."""
    if config.deployment_name is None:
        return []
    from zenml_serving.integration.registration import SelfRegistration

    registration = SelfRegistration(config, pipeline)

    @asynccontextmanager
    async def registered(_: Litestar) -> AsyncIterator[None]:
        await registration.announce(context.deployment)
        try:
            yield
        finally:
            await registration.withdraw()

    return [registered]


class _LazyApp:
    """`app` for servers that take an ASGI object, not a factory (`uvicorn
    zenml_serving.app:app`): `create_app()` from the environment on the first call (the
    lifespan startup), so that importing this module loads nothing. A startup problem is
    reported to the server as a failed lifespan startup (it then exits), after the one log
    line that says what to do."""

    def __init__(self) -> None:
        self._app: Litestar | None = None

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if self._app is None:
            try:
                self._app = create_app()
            except SystemExit:
                if scope["type"] != "lifespan":
                    raise
                await receive()  # lifespan.startup
                await send({"type": "lifespan.startup.failed", "message": "startup failed"})
                return
        await self._app(scope, receive, send)  # type: ignore[arg-type]


app = _LazyApp()
"""ASGI app built lazily from the environment (`uvicorn zenml_serving.app:app`)."""


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


def _load(config: ServingConfig, *, reuse: ServedPipeline | None = None) -> ServedPipeline:
    if config.deployment_id is None:
        raise ConfigError(
            "ZENML_PIPELINE_DEPLOYMENT_ID",
            None,
            "required: the ID of the snapshot to serve (`zenml-serving snapshot "
            "module:pipeline` prints one)",
        )
    return load_served_pipeline(
        config.deployment_id,
        source_root=config.source_root,
        loaded_artifacts=reuse.loaded_values() if reuse is not None else None,
    )
