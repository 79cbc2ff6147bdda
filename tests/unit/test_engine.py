"""DirectExecutionEngine: steps in order, in memory, with failures, retries and cancellation."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pytest

from tests.builders import literal, param, pipeline_of, step_of, upstream
from zenml_serving.deployment.model import RetryPolicy, ServedStep
from zenml_serving.engine.cancellation import (
    CancellationToken,
    InvocationCancelledError,
    InvocationTimeoutError,
)
from zenml_serving.engine.engine import DirectExecutionEngine, StepFailedError
from zenml_serving.engine.observer import StepOutcome


def load(text: str) -> str:
    return text.strip()


def split(text: str) -> tuple[str, int]:
    return text.upper(), len(text)


def combine(upper: str, length: int, suffix: str) -> str:
    return f"{upper}:{length}{suffix}"


def chain() -> DirectExecutionEngine:
    return DirectExecutionEngine(
        pipeline_of(
            step_of(load, text=param("raw")),
            step_of(split, outputs=("upper", "length"), text=upstream("load")),
            step_of(
                combine,
                upper=upstream("split", "upper"),
                length=upstream("split", "length"),
                suffix=literal("!"),
            ),
            parameters={"raw": (str, "x")},
        )
    )


class Recorder:
    """An observer that remembers what it saw."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def step_started(self, step: ServedStep, inputs: Mapping[str, Any]) -> None:
        self.calls.append(("started", step.name))

    def step_finished(self, step: ServedStep, outcome: StepOutcome) -> None:
        self.calls.append((outcome.status, step.name))


class TestRun:
    """Outputs flow between steps by name; pipeline outputs are mapped."""

    def test_outputs_flow_through_multiple_outputs_and_literals(self) -> None:
        result = chain().run({"raw": "  abc "})
        assert result.outputs == {"output": "ABC:3!"}
        assert [s.name for s in result.steps] == ["load", "split", "combine"]

    def test_the_observer_sees_every_step_in_order(self) -> None:
        recorder = Recorder()
        chain().run({"raw": "a"}, observer=recorder)
        assert recorder.calls == [
            ("started", "load"),
            ("completed", "load"),
            ("started", "split"),
            ("completed", "split"),
            ("started", "combine"),
            ("completed", "combine"),
        ]

    def test_a_step_returning_the_wrong_number_of_outputs_fails_naming_it(self) -> None:
        engine = DirectExecutionEngine(
            pipeline_of(step_of(lambda: "one", "pair", outputs=("a", "b")))
        )
        with pytest.raises(StepFailedError) as raised:
            engine.run({})
        assert raised.value.step == "pair"
        assert "declares 2 outputs" in str(raised.value)


class TestFailures:
    """A failing step stops the invocation and is named; hooks and retries behave as ZenML's."""

    def test_failure_names_the_step_and_keeps_the_original_error(self) -> None:
        def explode(text: str) -> str:
            raise KeyError(text)

        recorder = Recorder()
        engine = DirectExecutionEngine(
            pipeline_of(
                step_of(load, text=param("raw")),
                step_of(explode, text=upstream("load")),
                parameters={"raw": (str, "x")},
            )
        )
        with pytest.raises(StepFailedError) as raised:
            engine.run({"raw": "k"}, observer=recorder)
        assert raised.value.step == "explode"
        assert isinstance(raised.value.error, KeyError)
        assert recorder.calls[-1] == ("failed", "explode")

    def test_retries_until_success(self) -> None:
        attempts: list[int] = []

        def flaky() -> str:
            attempts.append(1)
            if len(attempts) < 3:
                raise ConnectionError("try again")
            return "ok"

        engine = DirectExecutionEngine(
            pipeline_of(step_of(flaky, retry=RetryPolicy(max_retries=2, delay_s=0, backoff=1)))
        )
        result = engine.run({})
        assert result.outputs == {"output": "ok"}
        assert result.steps[0].attempts == 3

    def test_hooks_get_called_and_a_failing_hook_changes_nothing(self) -> None:
        seen: list[object] = []

        def broken() -> str:
            raise ValueError("bad")

        def failure_hook(error: BaseException) -> None:
            seen.append(error)
            raise RuntimeError("hook bug")

        engine = DirectExecutionEngine(pipeline_of(step_of(broken, on_failure=failure_hook)))
        with pytest.raises(StepFailedError) as raised:
            engine.run({})
        assert isinstance(raised.value.error, ValueError)
        assert len(seen) == 1
        assert isinstance(seen[0], ValueError)


class TestCancellation:
    """No step starts after cancellation or past the deadline."""

    def test_cancel_during_a_step_stops_before_the_next(self) -> None:
        token = CancellationToken()
        ran: list[str] = []

        def first() -> str:
            ran.append("first")
            token.cancel("client went away")
            return "a"

        def second(value: str) -> str:
            ran.append("second")
            return value

        engine = DirectExecutionEngine(
            pipeline_of(step_of(first), step_of(second, value=upstream("first")))
        )
        with pytest.raises(InvocationCancelledError) as raised:
            engine.run({}, token=token)
        assert ran == ["first"]
        assert raised.value.next_step == "second"
        assert "client went away" in str(raised.value)

    def test_a_passed_deadline_is_a_timeout(self) -> None:
        engine = DirectExecutionEngine(pipeline_of(step_of(lambda: 1, "only")))
        with pytest.raises(InvocationTimeoutError):
            engine.run({}, token=CancellationToken(deadline=0.0))

    def test_retry_back_off_ends_early_and_no_retry_starts_when_cancelled(self) -> None:
        token = CancellationToken()
        calls: list[int] = []

        def always_fails() -> None:
            calls.append(1)
            threading.Timer(0.05, token.cancel, args=("stop",)).start()
            raise OSError("down")

        engine = DirectExecutionEngine(
            pipeline_of(
                step_of(always_fails, retry=RetryPolicy(max_retries=1, delay_s=3600, backoff=1))
            )
        )
        with pytest.raises(StepFailedError):
            engine.run({}, token=token)
        assert calls == [1]
