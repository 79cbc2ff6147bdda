"""The pipeline's `on_init` / `on_cleanup` hooks: imported and validated at load, run by the app.

ZenML runs `on_init` once per execution environment and keeps its return value as the run's
pipeline state; a serving process is one such environment, so the state lives as long as the
served version it was built for (a reload builds a new one). The kwargs were validated by ZenML
when the snapshot was made; they are validated again here against the imported function, so a
hook whose signature changed since stops startup instead of failing on first use.
"""

from __future__ import annotations

import inspect
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from zenml_serving.deployment.model import PipelineHooks

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from zenml.config.pipeline_configurations import PipelineConfiguration

__all__ = [
    "HookFailedError",
    "InitResult",
    "apply_environment",
    "load_hooks",
    "run_cleanup",
    "run_init",
]

_log = structlog.stdlib.get_logger(__name__)


class HookFailedError(RuntimeError):
    """The `on_init` hook raised (or its kwargs do not fit it); the message names the hook."""


@dataclass(frozen=True, slots=True)
class InitResult:
    """What `on_init` returned (the pipeline state) and how long it took."""

    state: Any
    duration_s: float


def load_hooks(configuration: PipelineConfiguration) -> PipelineHooks:
    """Import the hooks named in the snapshot and validate the init kwargs against them."""
    from zenml.hooks.validation import resolve_and_validate_hook
    from zenml.utils import source_utils

    on_init = on_cleanup = None
    kwargs: dict[str, Any] = {}
    init_source = cleanup_source = ""
    if configuration.init_hook_source is not None:
        init_source = configuration.init_hook_source.import_path
        on_init = source_utils.load(configuration.init_hook_source)
        try:
            _, kwargs = resolve_and_validate_hook(
                on_init, kwargs=dict(configuration.init_hook_kwargs or {})
            )
        except Exception as exc:
            raise HookFailedError(
                f"on_init hook '{init_source}' does not accept on_init_kwargs "
                f"{sorted(configuration.init_hook_kwargs or {})}: {_first_line(exc)}"
            ) from exc
    if configuration.cleanup_hook_source is not None:
        cleanup_source = configuration.cleanup_hook_source.import_path
        on_cleanup = source_utils.load(configuration.cleanup_hook_source)
    return PipelineHooks(
        on_init=on_init,
        init_kwargs=kwargs,
        on_cleanup=on_cleanup,
        init_source=init_source,
        cleanup_source=cleanup_source,
    )


def apply_environment(environment: Mapping[str, str]) -> None:
    """Set the pipeline's `environment` for this process (before `on_init` and every step)."""
    for name, value in environment.items():
        os.environ[name] = str(value)


def run_init(hooks: PipelineHooks) -> InitResult:
    """Call `on_init`; raise HookFailedError naming the hook and the error if it raises."""
    if hooks.on_init is None:
        return InitResult(state=None, duration_s=0.0)
    started = time.perf_counter()
    try:
        state = _call(hooks.on_init, hooks.init_kwargs)
    except Exception as exc:
        raise HookFailedError(
            f"on_init hook '{hooks.init_source}' failed: {type(exc).__name__}: {_first_line(exc)}"
        ) from exc
    return InitResult(state=state, duration_s=time.perf_counter() - started)


def run_cleanup(hooks: PipelineHooks) -> float | None:
    """Call `on_cleanup` (an error is logged, never raised); return its duration if it ran."""
    if hooks.on_cleanup is None:
        return None
    started = time.perf_counter()
    try:
        _call(hooks.on_cleanup, {})
    except Exception:
        _log.exception("on_cleanup_failed", hook=hooks.cleanup_source)
    return time.perf_counter() - started


def _call(hook: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
    if inspect.iscoroutinefunction(hook):
        from zenml.utils import async_utils

        return async_utils.run_coroutine_isolated(hook(**kwargs))
    return hook(**kwargs)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
