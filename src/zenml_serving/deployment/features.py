"""Which ZenML step features a served pipeline supports, checked once at startup.

Served steps run in-process, one invocation after another on worker threads, with outputs
passed in memory. `get_step_context()` / `log_metadata()` get a per-invocation context
(engine/context.py) and lazily loaded artifacts are resolved at startup (artifacts.py); features
that need an orchestrator cannot be honoured faithfully, so a snapshot that uses them is refused
with a message naming the step, the feature and what to do instead. The README lists the same
table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zenml.config.step_configurations import Step
    from zenml.models import PipelineSnapshotResponse

__all__ = ["UnsupportedFeatureError", "check_pipeline_features", "check_step_features"]


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


def check_step_features(name: str, step: Step) -> None:
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
    for arg, spec in step.spec.inputs.items():
        if isinstance(spec, list) or getattr(spec, "chunk_index", None) is not None:
            problems.append(
                f"input '{arg}' is mapped or collects several artifacts (.map/.product)"
            )
    if problems:
        raise UnsupportedFeatureError(f"step '{name}' cannot be served: " + "; ".join(problems))
