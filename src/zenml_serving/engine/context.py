"""`get_step_context()` inside a served step: a per-invocation ZenML StepContext.

ZenML 0.98 keeps the step context in a `ContextVar` (`StepContext.__context_var__`), so each
invocation's worker thread can hold its own: the engine sets a `ServedStepContext` around each
step and resets it after. It is a real `StepContext` subclass (`get_step_context()` and
`isinstance` checks work) whose fields come from the served version instead of a stored run:
`pipeline_state` (what `on_init` returned), `step_name`, `pipeline_run` (the invocation: id,
name), `model` / `model_version` (resolved at startup), `inputs` (the artifact versions loaded
at startup). What truly needs a stored run raises `StepContextError` naming the call and why.

`log_metadata()` / `log_step_metadata()` end in `Client.create_run_metadata`; while a served
step runs, that call is routed to the step's context instead of the store (no store write on
the request path): the metadata is recorded on the step run when the invocation is recorded,
and counted as not recorded otherwise. The routing is installed once (`install_metadata_route`)
and passes every call made outside a served step straight to ZenML.

Cost: building the context and setting the variable is a few attribute stores and one
`ContextVar.set`/`reset` per step (bench/step_context.py measures it).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from zenml.exceptions import StepContextError
from zenml.steps.step_context import StepContext

if TYPE_CHECKING:
    from collections.abc import Mapping

    from zenml_serving.deployment.model import ServedPipeline, ServedStep

__all__ = [
    "MetadataCounts",
    "ServedRun",
    "ServedStepContext",
    "ServedStepRun",
    "install_metadata_route",
    "metadata_counts",
]


_CONTEXT_VAR = StepContext.__context_var__


@dataclass(frozen=True, slots=True)
class ServedRun:
    """The current run as a served step sees it: the invocation (no stored pipeline run)."""

    id: uuid.UUID
    """The invocation id (also the recorded run's `orchestrator_run_id`)."""
    name: str
    """`<pipeline>-serving-<invocation id>`, the name of the run when it is recorded."""
    pipeline_name: str
    snapshot_id: uuid.UUID
    recorded: bool
    """Whether a ZenML run is recorded for this invocation (its capture policy)."""
    model_version: Any = None


@dataclass(frozen=True, slots=True)
class ServedStepRun:
    """The current step run as a served step sees it."""

    id: uuid.UUID
    name: str
    pipeline_run_id: uuid.UUID
    model_version: Any = None


@dataclass
class MetadataCounts:
    """`log_metadata()` calls in served steps: recorded on a run, or dropped (not recorded)."""

    recorded: int = 0
    not_recorded: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, *, recorded: bool) -> None:
        """Count one call."""
        with self._lock:
            if recorded:
                self.recorded += 1
            else:
                self.not_recorded += 1


metadata_counts = MetadataCounts()
"""Process-wide counts (shown by /status)."""


class ServedStepContext(StepContext):
    """ZenML's StepContext for one step of one served invocation."""

    def __init__(
        self,
        *,
        run: ServedRun,
        step: ServedStep,
        pipeline: ServedPipeline,
        state: Any,
    ) -> None:
        # StepContext.__init__ wants stored runs and output URIs; set its fields directly.
        self._token = None
        self.pipeline_run: ServedRun = run  # type: ignore[assignment]
        self.step_name = step.name
        version = step.model_version
        self.model_version = version.response if version is not None else None
        self._served_step = step
        self._served_pipeline = pipeline
        self._state = state
        # step_run and _outputs are built on first use: most steps never ask (a few us saved).
        self.logged_metadata: dict[str, Any] = {}
        """What `log_metadata()` gave during this step (recorded with the step run)."""

    def __enter__(self) -> ServedStepContext:
        """Make this the current step context (of this thread or task only)."""
        self._token = _CONTEXT_VAR.set(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Restore the previous step context."""
        assert self._token is not None
        _CONTEXT_VAR.reset(self._token)
        self._token = None

    @property
    def step_run(self) -> ServedStepRun:  # type: ignore[override]
        """The step run as far as it exists: a stable id derived from the invocation's."""
        return ServedStepRun(
            id=uuid.uuid5(self.pipeline_run.id, self.step_name),
            name=self.step_name,
            pipeline_run_id=self.pipeline_run.id,
            model_version=self.model_version,
        )

    @property
    def _outputs(self) -> dict[str, Any]:  # type: ignore[override]
        return {name: _Output() for name in self._served_step.outputs}

    @property
    def pipeline_state(self) -> Any:
        """What the pipeline's `on_init` hook returned for the version serving this call."""
        return self._state

    @property
    def pipeline(self) -> Any:
        """The pipeline (name, snapshot): served from a snapshot, there is no stored run."""
        return _ServedPipelineInfo(
            name=self._served_pipeline.name,
            id=self._served_pipeline.pipeline_id,
            snapshot_id=self._served_pipeline.snapshot_id,
        )

    @property
    def model(self) -> Any:
        """The step's (or pipeline's) model, as a ZenML `Model` pinned to the served version."""
        version = self._served_step.model_version
        if version is not None:
            return version.model_object
        if self._served_step.model is not None:
            return self._served_step.model
        raise StepContextError(
            f"get_step_context().model in step '{self.step_name}': no model is configured for "
            "the step or the pipeline"
        )

    @property
    def inputs(self) -> dict[str, list[Any]]:
        """The artifact versions loaded at startup that this step receives, by argument (as
        ZenML: a list per input). Upstream outputs are passed in memory: no stored artifact."""
        return {arg: list(values) for arg, values in self._served_step.artifact_inputs.items()}

    def log(self, metadata: Mapping[str, Any]) -> None:
        """Keep metadata for the step run (recorded only when the invocation is)."""
        self.logged_metadata.update(metadata)
        metadata_counts.count(recorded=self.pipeline_run.recorded)

    def get_output_materializer(self, *args: Any, **kwargs: Any) -> Any:  # noqa: ARG002
        """No artifact URI exists while a served step runs: outputs stay in memory."""
        raise self._no_stored_output("get_output_materializer()")

    def get_output_artifact_uri(self, output_name: str | None = None) -> str:  # noqa: ARG002
        """No artifact URI exists while a served step runs: outputs stay in memory."""
        raise self._no_stored_output("get_output_artifact_uri()")

    def add_output_metadata(
        self, metadata: Mapping[str, Any], output_name: str | None = None
    ) -> None:
        """Output metadata is kept with the step run's metadata, under the output's name."""
        key = self._output_key(output_name)
        self.log({f"{key}.{name}": value for name, value in metadata.items()})

    def get_output_metadata(self, output_name: str | None = None) -> dict[str, Any]:
        """The metadata this step added for one output so far."""
        prefix = self._output_key(output_name) + "."
        return {
            k.removeprefix(prefix): v
            for k, v in self.logged_metadata.items()
            if k.startswith(prefix)
        }

    def add_output_tags(self, *args: Any, **kwargs: Any) -> None:  # noqa: ARG002
        """Tags need a stored output artifact."""
        raise self._no_stored_output("add_output_tags()")

    def remove_output_tags(self, *args: Any, **kwargs: Any) -> None:  # noqa: ARG002
        """Tags need a stored output artifact."""
        raise self._no_stored_output("remove_output_tags()")

    def get_output_tags(self, *args: Any, **kwargs: Any) -> list[str]:  # noqa: ARG002
        """Tags need a stored output artifact."""
        raise self._no_stored_output("get_output_tags()")

    def _output_key(self, output_name: str | None) -> str:
        self._get_output(output_name)  # ZenML's checks: a known output, or the only one
        return output_name or next(iter(self._outputs))

    def _no_stored_output(self, call: str) -> StepContextError:
        return StepContextError(
            f"get_step_context().{call} in served step '{self.step_name}': served steps keep "
            "their outputs in memory, so no output artifact exists while the step runs; "
            "return the value as an output (a capture policy decides whether it is persisted)"
        )


@dataclass(frozen=True, slots=True)
class _ServedPipelineInfo:
    name: str
    id: uuid.UUID | None
    snapshot_id: uuid.UUID


class _Output:
    """What ZenML's `_get_output` checks: the names of the step's outputs."""

    __slots__ = ()


_installed = False
_install_lock = threading.Lock()


def install_metadata_route() -> None:
    """Route `Client.create_run_metadata` to the served step's context while one runs."""
    global _installed  # noqa: PLW0603 - one patch per process
    with _install_lock:
        if _installed:
            return
        from zenml.client import Client

        original = Client.create_run_metadata

        def create_run_metadata(self: Client, metadata: Any, *args: Any, **kwargs: Any) -> None:
            context = StepContext.get()
            if isinstance(context, ServedStepContext):
                context.log(metadata)
                return
            original(self, metadata, *args, **kwargs)

        create_run_metadata.__doc__ = original.__doc__
        Client.create_run_metadata = create_run_metadata  # type: ignore[method-assign]
        _installed = True
