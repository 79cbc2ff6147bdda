"""Capture policies end to end: /invoke in-process, run tracking into the real ZenML store.

Each test serves a pipeline with the tracking writer on, invokes it, shuts the app down (which
flushes the writer) and then reads what the store holds through ZenML's public Client.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from zenml.client import Client
from zenml.enums import ExecutionStatus
from zenml.models import PipelineRunResponse

from tests.integration.conftest import served
from tests.pipelines.capture import CANARY
from zenml_serving.app import create_app
from zenml_serving.config import ServingConfig

pytestmark = pytest.mark.anyio

PIPELINE = "tests.pipelines.capture:capture_pipeline"
LAYERED = "tests.pipelines.capture:layered_pipeline"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def invoke_all(
    target: str, bodies: list[dict[str, Any]], **config: Any
) -> list[dict[str, Any]]:
    """Run each body through /invoke, then shut the app down (flushing tracking)."""
    app: Litestar = create_app(ServingConfig(**config), served_pipeline=served(target))
    results = []
    async with AsyncTestClient(app) as client:
        for body in bodies:
            response = await client.post("/invoke", json=body)
            results.append({**response.json(), "http_status": response.status_code})
    return results


def run_of(invocation_id: str) -> PipelineRunResponse | None:
    runs = Client().list_pipeline_runs(orchestrator_run_id=invocation_id, hydrate=True)
    return runs.items[0] if runs.items else None


def store_bytes() -> bytes:
    """Everything in the session's ZenML store database (metadata, step runs, runs)."""
    url = Client().zen_store.url
    database = Path(url.removeprefix("sqlite:///"))
    with sqlite3.connect(database) as connection:
        lines = connection.iterdump()
        return "\n".join(lines).encode()


class TestModes:
    """What each mode leaves in the store."""

    async def test_full_records_run_steps_previews_and_artifacts(self) -> None:
        (result,) = await invoke_all(PIPELINE, [{"parameters": {"text": "  Hi "}}])
        run = run_of(result["invocation_id"])
        assert run is not None
        assert run.status == ExecutionStatus.COMPLETED
        assert run.run_metadata["invocation_id"] == result["invocation_id"]
        assert run.run_metadata["capture.mode"] == "full"
        parameters = run.run_metadata["parameters"]
        assert '"text": "  Hi "' in parameters["preview"]
        assert CANARY not in parameters["preview"], "api_key is redacted by name"
        assert set(run.steps) == {"clean", "explode", "answer"}
        answer = run.steps["answer"]
        assert answer.run_metadata["inputs"]["text"]["preview"] == '"hi"'
        assert "note" not in answer.run_metadata["inputs"], "a Capture('none') input leaves nothing"
        assert CANARY not in answer.run_metadata["outputs"]["output"]["preview"]
        artifact = answer.outputs["output"][0]
        assert artifact.load()["answer"] == "hi", "full persists outputs as artifacts"
        explode_inputs = run.steps["explode"].inputs
        assert explode_inputs["text"][0].id == run.steps["clean"].outputs["output"][0].id

    async def test_metadata_records_no_payloads_and_no_artifacts(self) -> None:
        (result,) = await invoke_all(
            PIPELINE, [{"parameters": {"text": "Hi"}}], capture_default="metadata"
        )
        run = run_of(result["invocation_id"])
        assert run is not None
        assert run.status == ExecutionStatus.COMPLETED
        assert "parameters" not in run.run_metadata
        assert "outputs" not in run.run_metadata
        answer = run.steps["answer"]
        assert answer.run_metadata["inputs"]["text"] == {"type": "str", "length": 2}
        assert answer.run_metadata["outputs"]["output"] == {"type": "dict", "length": 3}
        assert answer.outputs == {}

    async def test_none_records_nothing(self) -> None:
        (result,) = await invoke_all(PIPELINE, [{}], capture_default="none")
        assert result["http_status"] == 200
        assert run_of(result["invocation_id"]) is None

    async def test_create_runs_false_records_nothing_whatever_the_policy(self) -> None:
        (result,) = await invoke_all(PIPELINE, [{}], capture_default="full", create_runs=False)
        assert run_of(result["invocation_id"]) is None

    async def test_errors_only_is_metadata_until_a_step_fails(self) -> None:
        ok, failed = await invoke_all(
            PIPELINE,
            [{"parameters": {"text": "fine"}}, {"parameters": {"text": "boom"}}],
            capture_default="errors_only",
        )
        ok_run = run_of(ok["invocation_id"])
        assert ok_run is not None
        assert "preview" not in ok_run.steps["answer"].run_metadata["outputs"]["output"]
        failed_run = run_of(failed["invocation_id"])
        assert failed_run is not None
        assert failed_run.status == ExecutionStatus.FAILED
        step = failed_run.steps["explode"]
        assert step.status == ExecutionStatus.FAILED
        assert step.run_metadata["inputs"]["text"]["preview"] == '"boom"'
        assert step.exception_info is not None
        assert "cannot handle" in (step.exception_info.message or "")
        assert "Traceback" in step.exception_info.traceback
        assert CANARY not in step.exception_info.traceback
        assert "answer" not in failed_run.steps

    @pytest.mark.parametrize(("rate", "previews"), [(0.0, False), (1.0, True)])
    async def test_sampled_follows_the_rate(self, rate: float, previews: bool) -> None:
        (result,) = await invoke_all(
            PIPELINE, [{}], capture_default="sampled", capture_sample_rate=rate
        )
        run = run_of(result["invocation_id"])
        assert run is not None
        assert ("parameters" in run.run_metadata) is previews
        assert bool(run.steps["answer"].outputs) is previews


class TestPrecedence:
    """Step mode > request override > pipeline mode > service default, through /invoke."""

    async def test_request_beats_pipeline_and_step_beats_request(self) -> None:
        (result,) = await invoke_all(
            LAYERED,
            [{"capture_override": {"mode": "none"}}],
            capture_default="full",
        )
        run = run_of(result["invocation_id"])
        assert run is not None, "a step that declares full still records the run"
        assert "parameters" not in run.run_metadata, "the run level follows the request: none"
        assert run.steps["clean"].run_metadata == {}, "clean follows the request: none"
        assert run.steps["answer_full"].run_metadata["outputs"]["output"]["preview"]

    async def test_pipeline_beats_service_default(self) -> None:
        (result,) = await invoke_all(LAYERED, [{}], capture_default="full")
        run = run_of(result["invocation_id"])
        assert run is not None
        assert "preview" not in run.steps["clean"].run_metadata["inputs"]["text"]
        assert "parameters" not in run.run_metadata


class TestCanary:
    """A planted secret never reaches the store's records, whatever the mode."""

    @pytest.mark.parametrize("mode", ["full", "metadata", "errors_only", "none"])
    async def test_canary_never_in_stored_records(self, mode: str) -> None:
        before = store_bytes().count(CANARY.encode())
        await invoke_all(
            PIPELINE,
            [{"parameters": {"text": "boom"}}, {"parameters": {"text": "fine"}}],
            capture_default=mode,
        )
        assert store_bytes().count(CANARY.encode()) == before


class TestSensitiveNames:
    """A value under a sensitive name is redacted even when it does not look like a secret."""

    async def test_a_plain_password_parameter_never_reaches_the_store(self) -> None:
        plain = "correct-horse-battery-staple-4711"
        (result,) = await invoke_all(PIPELINE, [{"parameters": {"api_key": plain}}])
        run = run_of(result["invocation_id"])
        assert run is not None
        assert run.steps["clean"].run_metadata["inputs"]["api_key"]["preview"] == '"[REDACTED]"'
        assert run.steps["clean"].run_metadata["inputs"]["api_key"]["type"] == "str"
        assert plain.encode() not in store_bytes()


class TestStoreUnavailable:
    """A store that cannot be written does not slow requests down; every drop is counted."""

    async def test_requests_are_served_and_drops_counted_while_the_store_is_locked(self) -> None:
        url = Client().zen_store.url
        lock = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=1, isolation_level=None)
        app = create_app(
            ServingConfig(tracking_queue_size=2, shutdown_grace_s=1),
            served_pipeline=served(PIPELINE),
        )
        try:
            lock.execute("BEGIN EXCLUSIVE")  # nobody else can write until we let go
            async with AsyncTestClient(app) as client:
                codes = [(await client.post("/invoke", json={})).status_code for _ in range(8)]
                tracking = (await client.get("/status")).json()["tracking"]
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        assert codes == [200] * 8
        assert tracking["enabled"] is True
        assert tracking["dropped"]["queue_full"] >= 5, tracking
        assert tracking["written"] == 0
