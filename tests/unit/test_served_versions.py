"""Served versions and the per-invocation step context, without a store."""

from __future__ import annotations

import threading
import uuid
from typing import Any

from zenml import get_step_context
from zenml.steps.step_context import StepContext

from tests.builders import param, pipeline_of, step_of
from zenml_serving.engine.engine import DirectExecutionEngine
from zenml_serving.engine.versions import ServedVersion, ServedVersions


def read_state(text: str) -> str:
    context = get_step_context()
    return f"{context.pipeline_state}:{context.step_name}:{context.pipeline_run.id}:{text}"


def pipeline() -> Any:
    return pipeline_of(step_of(read_state, text=param("text")), parameters={"text": (str, ...)})


class TestServedVersions:
    """An invocation keeps the version it leased; a replaced version retires once unused."""

    def test_swap_retires_an_unused_version_at_once(self) -> None:
        retired: list[int] = []
        versions = ServedVersions(
            ServedVersion(pipeline(), number=1), on_retired=lambda v: retired.append(v.number)
        )
        versions.swap(ServedVersion(pipeline(), number=2))
        assert retired == [1]
        assert versions.current.number == 2

    def test_a_leased_version_retires_when_its_last_invocation_returns(self) -> None:
        retired: list[int] = []
        versions = ServedVersions(
            ServedVersion(pipeline(), number=1), on_retired=lambda v: retired.append(v.number)
        )
        held = versions.lease()
        versions.swap(ServedVersion(pipeline(), number=2))
        assert retired == []
        assert versions.in_use() == {2: 0, 1: 1}
        versions.release(held)
        assert retired == [1]
        assert versions.in_use() == {2: 0}


class TestStepContext:
    """Each invocation's steps see their own context, also on concurrent threads, and no
    context is left behind after the step."""

    def test_concurrent_invocations_each_see_their_own_run_and_the_state(self) -> None:
        engine = DirectExecutionEngine(ServedVersions(ServedVersion(pipeline(), state="model-v1")))
        results: dict[str, str] = {}
        barrier = threading.Barrier(4)

        def call(index: int) -> None:
            invocation_id = str(uuid.uuid4())
            barrier.wait()
            result = engine.run({"text": str(index)}, invocation_id=invocation_id)
            results[invocation_id] = result.outputs["output"]

        threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert len(results) == 4
        for invocation_id, output in results.items():
            assert output.startswith(f"model-v1:read_state:{invocation_id}:")
        assert StepContext.get() is None

    def test_a_swap_mid_flight_leaves_the_running_invocation_on_its_version(self) -> None:
        gate, entered = threading.Event(), threading.Event()

        def slow(text: str) -> str:
            entered.set()
            gate.wait(10)
            return f"{get_step_context().pipeline_state}:{text}"

        slow_pipeline = pipeline_of(
            step_of(slow, text=param("text")), parameters={"text": (str, ...)}
        )
        versions = ServedVersions(ServedVersion(slow_pipeline, state="v1"))
        engine = DirectExecutionEngine(versions)
        outputs: list[str] = []
        thread = threading.Thread(
            target=lambda: outputs.append(engine.run({"text": "a"}).outputs["output"])
        )
        thread.start()
        entered.wait(10)
        versions.swap(ServedVersion(slow_pipeline, state="v2", number=2))
        gate.set()
        thread.join(10)
        assert outputs == ["v1:a"]
        assert engine.run({"text": "b"}).outputs["output"] == "v2:b"
