"""VersionLifecycle: the served versions from startup to shutdown (hooks, reloads, cleanup).

At startup (in each granian worker, before the app exists) it applies the pipeline's ZenML
settings, sets its `environment`, runs `on_init` and holds the result as version 1. While the
service runs it owns the Reloader (`POST /admin/reload`, and the optional poll every
`ZENML_SERVING_RELOAD_INTERVAL` seconds) and shows the served version in the metrics. A replaced
version's `on_cleanup` runs once its last invocation returns; at shutdown, after the drain, the
current version's runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import TYPE_CHECKING, Any

import structlog

from zenml_serving.deployment.hooks import apply_environment, run_cleanup, run_init
from zenml_serving.engine.context import install_metadata_route
from zenml_serving.engine.reload import Reloader, ReloadOutcome, build_version
from zenml_serving.engine.versions import ServedVersion, ServedVersions
from zenml_serving.reload_signal import ReloadSignal
from zenml_serving.telemetry import metrics as service_metrics

if TYPE_CHECKING:
    from collections.abc import Callable

    from zenml_serving.config import ServingConfig
    from zenml_serving.deployment.model import ServedPipeline

__all__ = ["VersionLifecycle"]

_log = structlog.stdlib.get_logger(__name__)


class VersionLifecycle:
    """Builds version 1 now; starts the reload poll and runs the final cleanup later."""

    def __init__(
        self,
        config: ServingConfig,
        pipeline: ServedPipeline,
        *,
        load: Callable[[ServedPipeline], ServedPipeline],
        load_duration_s: float = 0.0,
    ) -> None:
        """Raises HookFailedError (naming the hook) when `on_init` raises."""
        self.config = _with_pipeline_settings(config, pipeline)
        """`config` with the pipeline's settings applied (the environment variables win)."""
        install_metadata_route()
        first = build_version(lambda: pipeline, _initialise, number=1)
        first = dataclasses.replace(first, load_duration_s=load_duration_s)
        _log_version_loaded(first)
        self.versions = ServedVersions(first, on_retired=_retire_in_background)
        self.reloader = Reloader(
            self.versions,
            load,
            _initialise,
            on_outcome=_count_reload if self.config.metrics_enabled else None,
        )
        self._poll: asyncio.Task[None] | None = None
        # Several workers: an admin reload in one makes the others follow (reload_signal.py).
        self._signal = ReloadSignal() if self.config.workers > 1 else None
        if self._signal is not None:
            self.reloader.announce = self._signal.announce

    @property
    def init_duration_s(self) -> float | None:
        """How long version 1's `on_init` took (None: no hook)."""
        return _rounded(self.versions.current.init_duration_s)

    def start(self) -> None:
        """Show version 1 in the metrics; start the reload poll if configured (on the loop)."""
        if self.config.metrics_enabled:
            _show_version(self.versions.current, None)
        if self.config.reload_interval_s > 0:
            self._poll = asyncio.create_task(
                _poll_reloads(self.reloader, self.config.reload_interval_s)
            )
        if self._signal is not None:
            self._signal.start(self.reloader)

    async def stop(self) -> None:
        """Stop the poll; after the drain, run the current version's `on_cleanup`."""
        if self._poll is not None:
            self._poll.cancel()
        if self._signal is not None:
            self._signal.stop()
        await asyncio.to_thread(_cleanup_at_shutdown, self.versions)


def _with_pipeline_settings(config: ServingConfig, pipeline: ServedPipeline) -> ServingConfig:
    """Apply what the pipeline's ZenML settings ask (the environment variables win)."""
    settings = pipeline.settings
    for name in settings.ignored:
        _log.warning(
            "deployment_setting_ignored",
            setting=name,
            reason="configures ZenML's own FastAPI server; zenml-serving has no equivalent",
        )
    if settings.max_concurrency is not None and not config.max_concurrency_set:
        config = dataclasses.replace(config, max_concurrency=settings.max_concurrency)
    if settings.step_concurrency is not None and not config.step_concurrency_set:
        config = dataclasses.replace(config, step_concurrency=settings.step_concurrency)
    return config


def _initialise(pipeline: ServedPipeline) -> tuple[Any, float | None]:
    """Apply the pipeline's environment, then run its on_init: (pipeline state, duration)."""
    apply_environment(pipeline.settings.environment)
    if pipeline.hooks.on_init is None:
        return None, None
    result = run_init(pipeline.hooks)
    return result.state, result.duration_s


def _log_version_loaded(version: ServedVersion) -> None:
    pipeline = version.pipeline
    _log.info(
        "pipeline_loaded",
        version=version.number,
        load_s=_rounded(version.load_duration_s),
        on_init=pipeline.hooks.init_source or None,
        on_init_s=_rounded(version.init_duration_s),
        artifacts=[f"{a.name}:{a.version}" for a in pipeline.artifacts],
        model_versions=[f"{v.model}:{v.version}" for v in pipeline.model_versions],
    )


def _rounded(seconds: float | None) -> float | None:
    return round(seconds, 4) if seconds is not None else None


def _retire(version: ServedVersion) -> None:
    duration = run_cleanup(version.pipeline.hooks)
    _log.info("version_retired", version=version.number, on_cleanup_s=_rounded(duration))


def _retire_in_background(version: ServedVersion) -> None:
    """Cleanup of a replaced version runs off the thread of the invocation that released it
    last (or of the reload that replaced it), so neither waits for it."""
    thread = threading.Thread(
        target=_retire, args=(version,), name="zenml-serving-retire", daemon=True
    )
    with _retiring_lock:
        _retiring[:] = [t for t in _retiring if t.is_alive()]
        _retiring.append(thread)
    thread.start()


_retiring: list[threading.Thread] = []
_retiring_lock = threading.Lock()
_RETIRE_WAIT_S = 30.0
"""How long shutdown waits for a replaced version's on_cleanup still running."""


def _cleanup_at_shutdown(versions: ServedVersions) -> None:
    """After the drain: on_cleanup for the current version; a retired one still held by an
    abandoned step is left alone (its step may still use what the hook would release)."""
    for version in versions.still_leased():
        _log.warning("version_still_in_use_at_shutdown", version=version.number)
    with _retiring_lock:
        running = list(_retiring)
    for thread in running:
        thread.join(_RETIRE_WAIT_S)
    _retire(versions.current)


def _count_reload(outcome: ReloadOutcome) -> None:
    service_metrics.RELOADS.labels(outcome=outcome.status).inc()
    if outcome.status == "reloaded":
        _show_version(outcome.version, outcome.version.number - 1)


def _show_version(version: ServedVersion, previous: int | None) -> None:
    if previous is not None:
        service_metrics.SERVED_VERSION.labels(version=str(previous)).set(0)
    service_metrics.SERVED_VERSION.labels(version=str(version.number)).set(version.loaded_at)


async def _poll_reloads(reloader: Reloader, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        await reloader.reload("interval", only_if_changed=True)
