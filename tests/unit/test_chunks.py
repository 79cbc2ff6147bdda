"""`emit()`: a no-op outside a served step with a stream; numbered, bounded chunks inside."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pytest

from tests.builders import pipeline_of, step_of
from zenml_serving import emit
from zenml_serving.deployment.model import ServedStep
from zenml_serving.engine.chunks import MAX_CHUNK_BYTES, ChunkTooLargeError
from zenml_serving.engine.engine import DirectExecutionEngine, StepFailedError
from zenml_serving.engine.observer import StepOutcome


class Streaming:
    """An observer that streams chunks, accepting the first `room` of them."""

    def __init__(self, room: int = 1_000_000) -> None:
        self.room = room
        self.chunks: list[tuple[str, int, Any]] = []
        self.outcomes: dict[str, StepOutcome] = {}
        self._lock = threading.Lock()

    def step_started(self, step: ServedStep, inputs: Mapping[str, Any]) -> None:
        pass

    def step_finished(self, step: ServedStep, outcome: StepOutcome) -> None:
        self.outcomes[step.name] = outcome

    def step_chunk(self, step: str, seq: int, value: Any, size: int) -> bool:
        with self._lock:
            if len(self.chunks) >= self.room:
                return False
            self.chunks.append((step, seq, value))
            return True


def talker(count: int = 3) -> int:
    return sum(emit({"i": i}) for i in range(count))


class TestOutsideAStream:
    def test_emit_outside_a_served_step_is_a_no_op(self) -> None:
        assert emit("hello") is False

    def test_a_served_step_without_a_stream_runs_and_emits_nothing(self) -> None:
        result = DirectExecutionEngine(pipeline_of(step_of(talker))).run({})
        assert result.outputs == {"output": 0}


class TestInAStream:
    def test_chunks_are_numbered_per_step_and_counted_on_the_outcome(self) -> None:
        observer = Streaming()
        result = DirectExecutionEngine(pipeline_of(step_of(talker))).run({}, observer=observer)
        assert result.outputs == {"output": 3}
        assert observer.chunks == [
            ("talker", 1, {"i": 0}),
            ("talker", 2, {"i": 1}),
            ("talker", 3, {"i": 2}),
        ]
        assert (observer.outcomes["talker"].chunks, observer.outcomes["talker"].chunks_dropped) == (
            3,
            0,
        )

    def test_a_full_backlog_drops_and_counts_and_the_numbers_show_the_gap(self) -> None:
        observer = Streaming(room=2)

        def five() -> int:
            return sum(emit(i) for i in range(5))

        result = DirectExecutionEngine(pipeline_of(step_of(five))).run({}, observer=observer)
        assert result.outputs == {"output": 2}
        assert [seq for _, seq, _ in observer.chunks] == [1, 2]
        assert (observer.outcomes["five"].chunks, observer.outcomes["five"].chunks_dropped) == (
            2,
            3,
        )

    def test_a_chunk_over_the_size_limit_fails_the_step_naming_it(self) -> None:
        def huge() -> None:
            emit("x" * (MAX_CHUNK_BYTES + 1))

        with pytest.raises(StepFailedError) as raised:
            DirectExecutionEngine(pipeline_of(step_of(huge))).run({}, observer=Streaming())
        assert isinstance(raised.value.error, ChunkTooLargeError)
        assert "'huge'" in str(raised.value.error)

    def test_a_chunk_json_cannot_carry_fails_the_step_naming_it(self) -> None:
        def opaque() -> None:
            emit(object())

        with pytest.raises(StepFailedError) as raised:
            DirectExecutionEngine(pipeline_of(step_of(opaque))).run({}, observer=Streaming())
        assert isinstance(raised.value.error, TypeError)
        assert "emit() in step 'opaque'" in str(raised.value.error)

    def test_after_the_step_emit_is_a_no_op_again(self) -> None:
        DirectExecutionEngine(pipeline_of(step_of(talker))).run({}, observer=Streaming())
        assert emit("late") is False
