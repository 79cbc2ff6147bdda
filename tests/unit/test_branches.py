"""Independent branches of one invocation run at once (engine/branches.py), on real threads.

Concurrency is proven with barriers, not clocks: a branch step waits until every branch has
started, which can only happen when they run at the same time.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Mapping
from typing import Any

import pytest
from zenml import get_step_context
from zenml.config.pipeline_configurations import PipelineConfiguration

from tests.builders import param, pipeline_of, step_of, upstream
from zenml_serving.deployment.features import UnsupportedFeatureError
from zenml_serving.deployment.model import ServedPipeline, ServedStep
from zenml_serving.deployment.settings import STEP_CONCURRENCY_KEY, read_settings
from zenml_serving.engine.cancellation import CancellationToken, InvocationCancelledError
from zenml_serving.engine.engine import DirectExecutionEngine, StepFailedError
from zenml_serving.engine.observer import StepOutcome

BRANCHES = ("tool_a", "tool_b", "tool_c")
BARRIER_TIMEOUT_S = 30.0
"""Only reached when branches do not overlap (a bug): the barrier then breaks the step."""


class Recorder:
    """An observer that remembers what it saw, from whichever thread."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def step_started(self, step: ServedStep, inputs: Mapping[str, Any]) -> None:
        with self._lock:
            self.calls.append(("started", step.name))

    def step_finished(self, step: ServedStep, outcome: StepOutcome) -> None:
        with self._lock:
            self.calls.append((outcome.status, step.name))


def fan_out(
    branch: Any, join: Any = None, *, width: int = 3, parameters: Any = None
) -> ServedPipeline:
    """prepare -> width branches calling `branch(name, value)` -> join of their outputs."""

    def prepare(text: str) -> str:
        return text

    def default_join(**parts: str) -> str:
        return "+".join(parts[name] for name in sorted(parts))

    steps = [step_of(prepare, text=param("text"))]
    for name in BRANCHES[:width]:

        def call(value: str, _name: str = name) -> str:
            return str(branch(_name, value))

        steps.append(step_of(call, name, value=upstream("prepare")))
    steps.append(
        step_of(join or default_join, "join", **{n: upstream(n) for n in BRANCHES[:width]})
    )
    return pipeline_of(*steps, parameters=parameters or {"text": (str, "x")})


def engine_of(pipeline: ServedPipeline, step_concurrency: int = 4) -> DirectExecutionEngine:
    return DirectExecutionEngine(pipeline, step_concurrency=step_concurrency, max_invocations=2)


class TestBranchesOverlap:
    def test_three_branches_run_at_once_and_the_join_gets_every_output(self) -> None:
        barrier = threading.Barrier(3, timeout=BARRIER_TIMEOUT_S)

        def branch(name: str, value: str) -> str:
            barrier.wait()  # passes only once all three branches are running
            return f"{name}({value})"

        recorder = Recorder()
        result = engine_of(fan_out(branch)).run({"text": "q"}, observer=recorder)

        assert result.outputs == {"output": "tool_a(q)+tool_b(q)+tool_c(q)"}
        started = [recorder.calls.index(("started", n)) for n in BRANCHES]
        completed = [recorder.calls.index(("completed", n)) for n in BRANCHES]
        assert max(started) < min(completed)
        assert recorder.calls[-2:] == [("started", "join"), ("completed", "join")]
        assert sorted(r.name for r in result.steps) == sorted(["prepare", *BRANCHES, "join"])

    def test_each_concurrent_step_has_its_own_step_context(self) -> None:
        barrier = threading.Barrier(3, timeout=BARRIER_TIMEOUT_S)

        def branch(name: str, value: str) -> str:
            barrier.wait()  # every branch's context is set now: they must not see each other's
            context = get_step_context()
            return f"{context.step_name}@{context.pipeline_run.id}"

        result = engine_of(fan_out(branch)).run({"text": "q"}, invocation_id=None)

        parts = str(result.outputs["output"]).split("+")
        assert [p.split("@")[0] for p in parts] == list(BRANCHES)
        assert len({p.split("@")[1] for p in parts}) == 1  # one invocation, one run id

    def test_the_limit_caps_the_steps_running_at_once(self) -> None:
        lock = threading.Lock()
        running: list[int] = [0]
        peak: list[int] = [0]
        two = threading.Barrier(2, timeout=BARRIER_TIMEOUT_S)

        def branch(name: str, value: str) -> str:
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            try:
                if name != "tool_c":
                    two.wait()  # the first two overlap; the third waits for a free place
            finally:
                with lock:
                    running[0] -= 1
            return name

        result = engine_of(fan_out(branch), step_concurrency=2).run({"text": "q"})

        assert result.outputs == {"output": "tool_a+tool_b+tool_c"}
        assert peak[0] == 2

    def test_opting_out_runs_every_step_on_the_invocation_thread_in_order(self) -> None:
        threads: set[int] = set()

        def branch(name: str, value: str) -> str:
            threads.add(threading.get_ident())
            return name

        recorder = Recorder()
        engine = engine_of(fan_out(branch), step_concurrency=1)
        result = engine.run({"text": "q"}, observer=recorder)

        assert engine.step_concurrency == 1
        assert threads == {threading.get_ident()}
        assert [r.name for r in result.steps] == ["prepare", *BRANCHES, "join"]
        assert recorder.calls[1::2] == [("completed", r.name) for r in result.steps]

    def test_a_chain_never_leaves_the_invocation_thread(self) -> None:
        threads: set[int] = set()

        def step(value: str) -> str:
            threads.add(threading.get_ident())
            return value + "."

        pipeline = pipeline_of(
            step_of(step, "one", value=param("text")),
            step_of(step, "two", value=upstream("one")),
            parameters={"text": (str, "x")},
        )
        engine = engine_of(pipeline)

        assert engine.run({"text": "a"}).outputs == {"output": "a.."}
        assert engine.step_concurrency == 1
        assert threads == {threading.get_ident()}


class TestStopping:
    def test_a_failing_branch_fails_the_invocation_naming_it_and_the_join_never_runs(
        self,
    ) -> None:
        barrier = threading.Barrier(3, timeout=BARRIER_TIMEOUT_S)
        joined: list[str] = []

        def branch(name: str, value: str) -> str:
            barrier.wait()
            if name == "tool_b":
                raise LookupError("no such tool")
            return name

        def join(**parts: str) -> str:
            joined.append("join")
            return ""

        recorder = Recorder()
        with pytest.raises(StepFailedError) as raised:
            engine_of(fan_out(branch, join)).run({"text": "q"}, observer=recorder)

        assert raised.value.step == "tool_b"
        assert isinstance(raised.value.error, LookupError)
        assert joined == []
        # The siblings ran to their end before the invocation raised (their results unused).
        assert ("completed", "tool_a") in recorder.calls
        assert ("completed", "tool_c") in recorder.calls
        assert ("started", "join") not in recorder.calls

    def test_cancelling_mid_way_starts_no_further_step(self) -> None:
        token = CancellationToken()
        barrier = threading.Barrier(3, timeout=BARRIER_TIMEOUT_S)
        joined: list[str] = []

        def branch(name: str, value: str) -> str:
            barrier.wait()
            token.cancel("client went away")
            return name

        def join(**parts: str) -> str:
            joined.append("join")
            return ""

        with pytest.raises(InvocationCancelledError) as raised:
            engine_of(fan_out(branch, join)).run({"text": "q"}, token=token)

        assert joined == []
        assert raised.value.next_step == "join"

    def test_what_a_failing_step_sets_in_its_context_reaches_the_invocation_thread(
        self,
    ) -> None:
        marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")
        barrier = threading.Barrier(2, timeout=BARRIER_TIMEOUT_S)

        def branch(name: str, value: str) -> str:
            barrier.wait()
            if name == "tool_a":
                marker.set("set by the failing step")
                raise ValueError("bad")
            return name

        def run_in_fresh_context() -> None:
            with pytest.raises(StepFailedError):
                engine_of(fan_out(branch, width=2)).run({"text": "q"})
            assert marker.get() == "set by the failing step"

        contextvars.copy_context().run(run_in_fresh_context)


class TestPipelineSetting:
    def test_the_pipeline_extra_sets_the_limit(self) -> None:
        configuration = PipelineConfiguration(name="p", extra={STEP_CONCURRENCY_KEY: 1})
        assert read_settings(configuration).step_concurrency == 1
        assert read_settings(PipelineConfiguration(name="p")).step_concurrency is None

    @pytest.mark.parametrize("value", [0, "2", True, 1.5])
    def test_a_bad_value_stops_startup_naming_the_key(self, value: object) -> None:
        configuration = PipelineConfiguration(name="p", extra={STEP_CONCURRENCY_KEY: value})
        with pytest.raises(UnsupportedFeatureError, match=STEP_CONCURRENCY_KEY):
            read_settings(configuration)
