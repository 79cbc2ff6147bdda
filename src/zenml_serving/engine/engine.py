"""DirectExecutionEngine: run a ServedPipeline for one invocation, step by step, in memory.

The engine is synchronous and knows nothing of HTTP or asyncio: the execution manager calls
`run` on a worker thread. Each step gets its inputs from the request's parameters, literals
fixed in the snapshot, artifacts loaded at startup, or upstream outputs held in a dict that
lives only for this call, so concurrent invocations share nothing mutable. An invocation leases
the served version current when it starts (engine/versions.py) and runs every step on it, each
inside its own ZenML step context (engine/context.py). Independent branches run at once, up to
`step_concurrency` steps of one invocation (engine/branches.py); a chain runs on the
invocation's thread as before.
"""

from __future__ import annotations

import inspect
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from zenml_serving.deployment.model import (
    FromArtifact,
    FromLiteral,
    FromParameter,
    FromStepOutput,
    ServedPipeline,
)
from zenml_serving.engine.branches import BranchThreads, run_branches, widest_level
from zenml_serving.engine.cancellation import CancellationToken
from zenml_serving.engine.chunks import StepChunks, current_chunks
from zenml_serving.engine.context import ServedRun, ServedStepContext
from zenml_serving.engine.observer import ExecutionObserver, StepOutcome, chunk_sink
from zenml_serving.engine.versions import ServedVersion, ServedVersions

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from zenml_serving.deployment.model import ServedStep

__all__ = ["DirectExecutionEngine", "InvocationResult", "StepFailedError"]

_log = structlog.stdlib.get_logger(__name__)

QUICK_STEP_S = 0.00025
"""A step whose recent runs took less runs on the invocation's thread even when other steps are
ready: a hand-off to a helper thread costs ~20 us, so only a step that takes much longer gains
from running beside its siblings."""


class StepFailedError(Exception):
    """A step raised (after its retries) or returned outputs that do not match its signature."""

    def __init__(
        self, step: str, error: BaseException, attempts: int, duration_s: float = 0.0
    ) -> None:
        super().__init__(f"step '{step}' failed: {type(error).__name__}: {error}")
        self.step = step
        self.error = error
        self.attempts = attempts
        self.duration_s = duration_s
        """How long the step ran, its retries included."""


@dataclass(frozen=True)
class StepRecord:
    """What the response tells about one step that ran."""

    name: str
    status: str
    duration_s: float
    attempts: int = 1


@dataclass(frozen=True)
class InvocationResult:
    """The pipeline's outputs by name, and how each step went."""

    outputs: dict[str, Any]
    steps: list[StepRecord] = field(default_factory=list)
    duration_s: float = 0.0


class _NullObserver:
    def step_started(self, step: ServedStep, inputs: Mapping[str, Any]) -> None:
        pass

    def step_finished(self, step: ServedStep, outcome: StepOutcome) -> None:
        pass


class DirectExecutionEngine:
    """Runs the steps of the current served version, passing outputs in memory."""

    def __init__(
        self,
        pipeline: ServedPipeline | ServedVersions,
        *,
        records_runs: bool = False,
        step_concurrency: int = 1,
        max_invocations: int = 1,
    ) -> None:
        """`step_concurrency`: steps of one invocation running at once at most (1: one after
        another); `max_invocations`: invocations running at once (sizes the helper threads)."""
        self.records_runs = records_runs
        """Whether this service records ZenML runs at all (ZENML_SERVING_CREATE_RUNS)."""
        self.versions = (
            pipeline
            if isinstance(pipeline, ServedVersions)
            else ServedVersions(ServedVersion(pipeline))
        )
        # Every version has the same steps: whether branches can overlap is known once.
        self.step_concurrency = min(step_concurrency, widest_level(self.pipeline.steps))
        """Steps of one invocation running at once at most (1 for a chain or when opted out)."""
        self._branch_threads = (
            BranchThreads(max_invocations * self.step_concurrency)
            if self.step_concurrency > 1
            else None
        )
        self._step_seconds: dict[str, float] = {}
        """Moving average of each step's duration: quick steps are not handed off."""

    @property
    def pipeline(self) -> ServedPipeline:
        """The pipeline of the current version (every version has the same steps)."""
        return self.versions.current.pipeline

    def run(
        self,
        parameters: Mapping[str, Any],
        *,
        token: CancellationToken | None = None,
        observer: ExecutionObserver | None = None,
        records: list[StepRecord] | None = None,
        invocation_id: str | None = None,
        recorded: bool = False,
    ) -> InvocationResult:
        """Run every step; return the pipeline outputs.

        `parameters` are the request's validated pipeline parameters. Raises StepFailedError
        naming the failing step, or InvocationCancelledError / InvocationTimeoutError when the
        token stops the invocation between steps. `records` (if given) is filled as steps
        finish, so a caller still sees the progress of an invocation that raised.
        `invocation_id` and `recorded` (whether a ZenML run is recorded for it) are what the
        step context tells a step about its run.
        """
        stop: CancellationToken = token or CancellationToken()
        watcher: ExecutionObserver = observer or _NullObserver()
        done: list[StepRecord] = records if records is not None else []
        started = time.perf_counter()
        values: dict[tuple[str, str], Any] = {}
        version = self.versions.lease()
        try:
            pipeline = version.pipeline
            run = _served_run(pipeline, invocation_id, recorded=recorded and self.records_runs)
            if self._branch_threads is not None:
                # Once a step has failed, its siblings still running make no further attempt.
                failed = threading.Event()

                def run_step(step: ServedStep) -> None:
                    inputs = self._inputs(step, parameters, values)
                    context = ServedStepContext(
                        run=run, step=step, pipeline=pipeline, state=version.state
                    )
                    outputs, record = self._run_step(
                        step, inputs, stop, watcher, context, halted=failed.is_set
                    )
                    done.append(record)
                    for name, value in outputs.items():
                        values[step.name, name] = value
                    previous = self._step_seconds.get(step.name, record.duration_s)
                    self._step_seconds[step.name] = 0.8 * previous + 0.2 * record.duration_s

                run_branches(
                    pipeline.steps,
                    run_step,
                    limit=self.step_concurrency,
                    threads=self._branch_threads,
                    before_start=lambda step: stop.raise_if_stopped(step.name),
                    on_error=failed.set,
                    quick=self._quick,
                )
                steps: tuple[ServedStep, ...] = ()
            else:
                steps = pipeline.steps
            for step in steps:
                stop.raise_if_stopped(step.name)
                inputs = self._inputs(step, parameters, values)
                context = ServedStepContext(
                    run=run, step=step, pipeline=pipeline, state=version.state
                )
                outputs, record = self._run_step(step, inputs, stop, watcher, context)
                done.append(record)
                for name, value in outputs.items():
                    values[step.name, name] = value
            result = {o.name: values[o.step, o.output] for o in pipeline.outputs}
        finally:
            self.versions.release(version)
        return InvocationResult(
            outputs=result, steps=done, duration_s=time.perf_counter() - started
        )

    def _quick(self, step: ServedStep) -> bool:
        """Whether `step` usually returns sooner than handing it to a helper thread is worth
        (unknown: no, so that a first invocation already runs its branches at once)."""
        return self._step_seconds.get(step.name, QUICK_STEP_S) < QUICK_STEP_S

    @staticmethod
    def _inputs(
        step: ServedStep, parameters: Mapping[str, Any], values: Mapping[tuple[str, str], Any]
    ) -> dict[str, Any]:
        inputs: dict[str, Any] = {}
        for arg, binding in step.inputs.items():
            if isinstance(binding, FromStepOutput):
                inputs[arg] = values[binding.step, binding.output]
            elif isinstance(binding, FromParameter):
                value = parameters[binding.name]
                inputs[arg] = binding.coerce(value) if binding.coerce else value
            elif isinstance(binding, FromArtifact):
                inputs[arg] = binding.value
            elif isinstance(binding, FromLiteral):
                inputs[arg] = binding.fresh()
        return inputs

    def _run_step(
        self,
        step: ServedStep,
        inputs: dict[str, Any],
        token: CancellationToken,
        observer: ExecutionObserver,
        context: ServedStepContext,
        *,
        halted: Callable[[], bool] = bool,
    ) -> tuple[dict[str, Any], StepRecord]:
        # The context covers the step, its retries and its hooks (ZenML's hooks read it too).
        with context:
            sink = chunk_sink(observer)
            if sink is None:  # nothing streams: emit() is a no-op
                return self._attempt_step(step, inputs, token, observer, context, halted=halted)
            chunks = StepChunks(step.name, sink)
            reset = current_chunks.set(chunks)
            try:
                return self._attempt_step(
                    step, inputs, token, observer, context, halted=halted, chunks=chunks
                )
            finally:
                current_chunks.reset(reset)

    def _attempt_step(
        self,
        step: ServedStep,
        inputs: dict[str, Any],
        token: CancellationToken,
        observer: ExecutionObserver,
        context: ServedStepContext,
        *,
        halted: Callable[[], bool],
        chunks: StepChunks | None = None,
    ) -> tuple[dict[str, Any], StepRecord]:
        """Call the step, retrying as its policy says unless cancelled or `halted()` (a
        sibling branch failed)."""
        observer.step_started(step, inputs)
        started = time.perf_counter()
        attempts = 0
        max_attempts = 1 + (step.retry.max_retries if step.retry else 0)
        while True:
            attempts += 1
            try:
                outputs = _split_outputs(step, step.function(**inputs))
                break
            # sys.exit() or a raised KeyboardInterrupt in step code fail the step, named, like
            # any error (on a worker thread they are no signal to stop the server); no retry.
            except (Exception, SystemExit, KeyboardInterrupt) as exc:
                retryable = isinstance(exc, Exception)
                if retryable and attempts < max_attempts and not token.cancelled and not halted():
                    assert step.retry is not None
                    # As ZenML: the first wait is `delay`, each later one `backoff` times longer.
                    delay = step.retry.delay_s * step.retry.backoff ** (attempts - 1)
                    _log.warning(
                        "step_retry", step=step.name, attempt=attempts, error=type(exc).__name__
                    )
                    token.sleep(delay)
                    if not token.cancelled:
                        continue
                duration = time.perf_counter() - started
                observer.step_finished(
                    step,
                    StepOutcome(
                        "failed",
                        duration,
                        attempts,
                        error=exc,
                        metadata=context.logged_metadata or None,
                        chunks=chunks.emitted if chunks else 0,
                        chunks_dropped=chunks.dropped if chunks else 0,
                    ),
                )
                _call_hook(step, step.on_failure, exc)
                raise StepFailedError(step.name, exc, attempts, duration) from exc
        duration = time.perf_counter() - started
        observer.step_finished(
            step,
            StepOutcome(
                "completed",
                duration,
                attempts,
                outputs=outputs,
                metadata=context.logged_metadata or None,
                chunks=chunks.emitted if chunks else 0,
                chunks_dropped=chunks.dropped if chunks else 0,
            ),
        )
        _call_hook(step, step.on_success, None)
        return outputs, StepRecord(step.name, "completed", duration, attempts)


def _served_run(
    pipeline: ServedPipeline, invocation_id: str | None, *, recorded: bool
) -> ServedRun:
    run_id = uuid.UUID(invocation_id) if invocation_id else uuid.uuid4()
    return ServedRun(
        id=run_id,
        name=f"{pipeline.name}-serving-{run_id}",
        pipeline_name=pipeline.name,
        snapshot_id=pipeline.snapshot_id,
        recorded=recorded,
        model_version=pipeline.model_versions[0].response if pipeline.model_versions else None,
    )


class StepOutputError(TypeError):
    """A step returned a different number of values than it declares outputs."""


def _split_outputs(step: ServedStep, returned: Any) -> dict[str, Any]:
    if len(step.outputs) == 1:
        return {step.outputs[0]: returned}
    if len(step.outputs) == 0:
        return {}
    if not isinstance(returned, (tuple, list)) or len(returned) != len(step.outputs):
        got = f"{len(returned)} values" if isinstance(returned, (tuple, list)) else "one value"
        raise StepOutputError(
            f"returned {got} but declares {len(step.outputs)} outputs {list(step.outputs)}"
        )
    return dict(zip(step.outputs, returned, strict=True))


def _call_hook(step: ServedStep, hook: Any, error: BaseException | None) -> None:
    """Run a success/failure hook; a hook that raises is logged, never fatal (as in ZenML)."""
    if hook is None:
        return
    try:
        accepts_argument = bool(inspect.signature(hook).parameters)
        if error is not None and accepts_argument:
            hook(error)
        else:
            hook()
    except (Exception, SystemExit, KeyboardInterrupt):
        _log.exception("step_hook_failed", step=step.name, hook=getattr(hook, "__name__", "?"))
