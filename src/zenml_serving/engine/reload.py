"""Reload without a restart: build a new served version beside the current one, then swap.

`Reloader.reload` runs the (injected) loader and the pipeline's `on_init` on a worker thread,
checks that the new version has the same shape as the one served (same steps, inputs, outputs
and parameters: the request validation, capture plan and tracking built at startup stay valid),
and swaps it in (engine/versions.py): invocations in flight finish on the version they started
with, the old version's `on_cleanup` runs once the last of them returns. A reload that fails
anywhere before the swap (store unreachable, an artifact that will not load, a raising
`on_init`) changes nothing: the old version keeps serving and the failure says why.

Reloads are serialised: a second request while one runs waits for it and then runs its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import structlog

from zenml_serving.capture import mask_secrets
from zenml_serving.deployment.model import FromArtifact, FromLiteral, FromParameter, FromStepOutput
from zenml_serving.engine.versions import ServedVersion, ServedVersions

if TYPE_CHECKING:
    from collections.abc import Callable

    from zenml_serving.deployment.model import ServedPipeline

__all__ = ["ReloadOutcome", "Reloader", "build_version"]

_log = structlog.stdlib.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ReloadOutcome:
    """How one reload ended."""

    status: Literal["reloaded", "unchanged", "failed"]
    at: float
    duration_s: float
    trigger: str
    version: ServedVersion
    """The version serving after the reload (the old one if it failed)."""
    error: str | None = None

    def describe(self) -> dict[str, Any]:
        """The JSON form (the admin answer, /info's `last_reload`)."""
        return {
            "status": self.status,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.at)),
            "duration_s": round(self.duration_s, 4),
            "trigger": self.trigger,
            "serving_version": self.version.number,
            "error": self.error,
        }


def build_version(
    load: Callable[[], ServedPipeline],
    run_init: Callable[[ServedPipeline], tuple[Any, float | None]],
    number: int,
) -> ServedVersion:
    """Load a pipeline and run its `on_init`: a version ready to serve (blocking)."""
    started = time.perf_counter()
    pipeline = load()
    load_duration = time.perf_counter() - started
    state, init_duration = run_init(pipeline)
    return ServedVersion(
        pipeline=pipeline,
        state=state,
        number=number,
        load_duration_s=load_duration,
        init_duration_s=init_duration,
    )


class Reloader:
    """Builds and swaps in new served versions, one reload at a time."""

    def __init__(
        self,
        versions: ServedVersions,
        load: Callable[[ServedPipeline], ServedPipeline],
        run_init: Callable[[ServedPipeline], tuple[Any, float | None]],
        *,
        on_outcome: Callable[[ReloadOutcome], None] | None = None,
    ) -> None:
        self._versions = versions
        self._load = load
        """Loads the pipeline again; given the current one, so that artifact versions that
        did not change are reused instead of loaded again."""
        self._run_init = run_init
        self._on_outcome = on_outcome
        self._lock = asyncio.Lock()
        self.last: ReloadOutcome | None = None
        """The most recent reload's outcome (None before the first)."""
        self.announce: Callable[[], object] | None = None
        """Called after a successful reload an operator asked for (`trigger="admin"`): tells
        the server's other workers to follow."""

    async def reload(self, trigger: str, *, only_if_changed: bool = False) -> ReloadOutcome:
        """Build a new version and swap it in; on any failure keep the current one.

        `only_if_changed` (the interval poll): when the pipeline has no `on_init` (whose
        result cannot be compared) and resolves to the same artifact and model versions as
        the served one, keep the served version and answer `unchanged`.
        """
        async with self._lock:
            started = time.perf_counter()
            current = self._versions.current
            try:
                pipeline = await asyncio.to_thread(self._load, current.pipeline)
                _check_same_shape(current.pipeline, pipeline)
                if (
                    only_if_changed
                    and pipeline.hooks.on_init is None
                    and _pinned(pipeline) == _pinned(current.pipeline)
                ):
                    _log.debug("reload_unchanged", trigger=trigger)
                    return ReloadOutcome(
                        "unchanged", time.time(), time.perf_counter() - started, trigger, current
                    )
                new = await asyncio.to_thread(
                    build_version,
                    lambda: pipeline,
                    self._run_init,
                    current.number + 1,
                )
                new = dataclasses.replace(
                    new, load_duration_s=new.load_duration_s + time.perf_counter() - started
                )
            except Exception as exc:
                outcome = ReloadOutcome(
                    "failed",
                    time.time(),
                    time.perf_counter() - started,
                    trigger,
                    current,
                    # The reason goes to the log and the admin's answer: mask what looks secret.
                    error=mask_secrets(
                        str(exc) if _is_load_error(exc) else f"{type(exc).__name__}: {exc}"
                    ),
                )
                _log.error(
                    "reload_failed",
                    trigger=trigger,
                    error=outcome.error,
                    serving_version=current.number,
                )
            else:
                self._versions.swap(new)
                if trigger == "admin" and self.announce is not None:
                    self.announce()
                outcome = ReloadOutcome(
                    "reloaded", time.time(), time.perf_counter() - started, trigger, new
                )
                _log.info(
                    "reloaded",
                    trigger=trigger,
                    serving_version=new.number,
                    previous_version=current.number,
                    artifacts=_names(new.pipeline),
                    model_versions=[f"{v.model}:{v.version}" for v in new.pipeline.model_versions],
                    duration_s=round(outcome.duration_s, 4),
                    on_init_s=(
                        round(new.init_duration_s, 4) if new.init_duration_s is not None else None
                    ),
                )
            self.last = outcome
            if self._on_outcome is not None:
                self._on_outcome(outcome)
            return outcome


class ShapeChangedError(RuntimeError):
    """The reloaded snapshot has other steps, inputs or parameters: that needs a restart."""


def _check_same_shape(old: ServedPipeline, new: ServedPipeline) -> None:
    if _shape(old) != _shape(new):
        raise ShapeChangedError(
            "the reloaded snapshot has different steps, inputs, outputs or parameters than "
            "the one being served; restart the service to serve it"
        )
    if old.parameter_schema() != new.parameter_schema():
        raise ShapeChangedError(
            "the reloaded snapshot's parameters differ from the served ones; restart the "
            "service to serve it"
        )


def _shape(pipeline: ServedPipeline) -> Any:
    return (
        pipeline.snapshot_id,
        tuple(
            (
                step.name,
                step.outputs,
                tuple(sorted((arg, _kind(binding)) for arg, binding in step.inputs.items())),
            )
            for step in pipeline.steps
        ),
        pipeline.outputs,
    )


def _kind(binding: object) -> Any:
    if isinstance(binding, FromParameter):
        return ("parameter", binding.name)
    if isinstance(binding, FromStepOutput):
        return ("step", binding.step, binding.output)
    if isinstance(binding, FromArtifact):
        return ("artifact", binding.artifact.name)
    if isinstance(binding, FromLiteral):
        return ("literal",)
    return (type(binding).__name__,)


def _pinned(pipeline: ServedPipeline) -> Any:
    """What a reload can change without a restart: the artifact and model versions."""
    return (
        tuple(artifact.id for artifact in pipeline.artifacts),
        tuple(version.id for version in pipeline.model_versions),
    )


def _names(pipeline: ServedPipeline) -> list[str]:
    return [f"{a.name}:{a.version}" for a in pipeline.artifacts]


def _is_load_error(exc: BaseException) -> bool:
    # The loader's and hook's own errors are one line that already says what failed.
    return type(exc).__name__ in {"DeploymentLoadError", "HookFailedError", "ShapeChangedError"}
