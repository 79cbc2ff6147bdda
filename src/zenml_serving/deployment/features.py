"""Which ZenML step features a served pipeline supports, checked once at startup.

Served steps run in-process, one invocation after another on worker threads, with outputs
passed in memory. Features that need an orchestrator, a per-run store record or a process-wide
step context cannot be honoured faithfully, so a snapshot that uses them is refused with a
message naming the step, the feature and what to do instead. The README lists the same table.
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from zenml.config.step_configurations import Step
    from zenml.models import PipelineSnapshotResponse

__all__ = ["UnsupportedFeatureError", "check_pipeline_features", "check_step_features"]

# Functions that need ZenML's per-run step context (a pipeline run and step run in the store).
_STEP_CONTEXT_FUNCTIONS = frozenset({"get_step_context", "log_metadata", "log_step_metadata"})


class UnsupportedFeatureError(ValueError):
    """The snapshot uses a ZenML feature that serving cannot honour."""


def check_pipeline_features(snapshot: PipelineSnapshotResponse) -> None:
    """Refuse pipeline-level features that serving cannot honour."""
    if snapshot.is_dynamic:
        raise UnsupportedFeatureError(
            f"pipeline '{snapshot.pipeline_configuration.name}' is dynamic (its graph is built "
            "while it runs); serve a static pipeline: @pipeline without dynamic=True"
        )
    if snapshot.pipeline_spec is None:
        raise UnsupportedFeatureError("the snapshot has no pipeline spec; re-create it")


def check_step_features(name: str, step: Step, function: Callable[..., Any]) -> None:
    """Refuse step-level features that serving cannot honour, naming the step."""
    config = step.config
    problems: list[str] = []
    if config.step_operator:
        problems.append(
            f"runs on step operator '{config.step_operator}' (served steps run in-process)"
        )
    if config.experiment_tracker:
        problems.append(
            f"uses experiment tracker '{config.experiment_tracker}' (it needs a ZenML run)"
        )
    if getattr(config, "command", None):
        problems.append("is a command step (served steps are Python functions)")
    if config.model_artifacts_or_metadata or config.client_lazy_loaders:
        problems.append(
            "takes lazily loaded model artifacts or client calls as inputs (they are resolved "
            "per orchestrated run); pass the artifact by ID or load it inside the step"
        )
    for arg, spec in step.spec.inputs.items():
        if isinstance(spec, list) or getattr(spec, "chunk_index", None) is not None:
            problems.append(
                f"input '{arg}' is mapped or collects several artifacts (.map/.product)"
            )
    used = sorted(_global_names(function.__code__) & _STEP_CONTEXT_FUNCTIONS)
    if used:
        problems.append(
            f"calls {', '.join(used)}(), which needs a ZenML run and step run per invocation; "
            "return the values as step outputs instead"
        )
    if problems:
        raise UnsupportedFeatureError(f"step '{name}' cannot be served: " + "; ".join(problems))


def _global_names(code: types.CodeType) -> set[str]:
    return {name for c in _code_objects(code) for name in c.co_names}


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)
