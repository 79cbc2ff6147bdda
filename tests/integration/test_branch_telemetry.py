"""Telemetry of concurrent branches, in-process: each step's span is a child of the invocation
span, concurrent steps overlap, and a failing branch's message is withheld from the log by the
same capture rule as a step run one after another."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.builders import param, pipeline_of, step_of, upstream
from tests.telemetry_support import CANARY
from zenml_serving.app import create_app
from zenml_serving.config import ServingConfig
from zenml_serving.deployment.model import ServedPipeline
from zenml_serving.telemetry.logging import WITHHELD
from zenml_serving.telemetry.service import Telemetry

pytestmark = pytest.mark.anyio

BRANCHES = ("left", "middle", "right")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def branches(fail: str = "") -> ServedPipeline:
    """prepare -> three branches that meet at a barrier (so they must overlap) -> join."""
    barrier = threading.Barrier(3, timeout=30)

    def prepare(text: str) -> str:
        return text

    steps = [step_of(prepare, text=param("text"))]
    for name in BRANCHES:

        def call(value: str, _name: str = name) -> str:
            barrier.wait()
            if _name == fail:
                raise ValueError(f"cannot handle {value}")  # quotes an input
            return _name

        steps.append(step_of(call, name, value=upstream("prepare")))

    def join(left: str, middle: str, right: str) -> str:
        return "+".join((left, middle, right))

    steps.append(step_of(join, **{n: upstream(n) for n in BRANCHES}))
    return pipeline_of(*steps, parameters={"text": (str, "x")})


async def test_each_branch_span_is_a_child_of_the_invocation_span() -> None:
    config = ServingConfig(log_format="json")
    exporter = InMemorySpanExporter()
    telemetry = Telemetry(config, span_exporter=exporter, set_global_tracer_provider=False)
    app = create_app(config, served_pipeline=branches(), telemetry=telemetry)
    async with AsyncTestClient(app) as client:
        response = await client.post("/invoke", json={"parameters": {"text": "q"}})
    assert response.json()["outputs"] == {"output": "left+middle+right"}

    telemetry.force_flush()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    invocation = spans["invoke test_pipeline"]
    for name in (*BRANCHES, "prepare", "join"):
        step = spans[f"step {name}"]
        assert step.parent is not None
        assert step.parent.span_id == invocation.context.span_id
    branch_spans = [spans[f"step {n}"] for n in BRANCHES]
    assert max(s.start_time or 0 for s in branch_spans) < min(s.end_time or 0 for s in branch_spans)


async def test_a_failing_branch_message_is_withheld_where_capture_allows_no_payload(
    capfd: pytest.CaptureFixture[str],
) -> None:
    config = ServingConfig(log_format="json", capture_default="metadata")
    app = create_app(config, served_pipeline=branches(fail="middle"))
    async with AsyncTestClient(app) as client:
        response = await client.post("/invoke", json={"parameters": {"text": CANARY}})
    assert response.status_code == 500
    assert response.json()["step"] == "middle"

    lines: list[dict[str, Any]] = [
        json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")
    ]
    failure = next(e for e in lines if e["event"] == "step_failed")
    assert failure["step"] == "middle"
    assert failure["exception"][0]["exc_value"] == WITHHELD
    assert CANARY not in json.dumps(lines)
