"""Both run-tracking writers (`ZENML_SERVING_TRACKING_WRITER`) record every invocation the same
way: the writer process (default) and the in-process thread (the former writer)."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient
from zenml.client import Client
from zenml.enums import ExecutionStatus

from tests.integration.conftest import served
from zenml_serving.app import create_app
from zenml_serving.config import ServingConfig

TEXT = "examples.text_pipeline:text_pipeline"

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize("writer", ["process", "thread"])
async def test_each_writer_records_every_invocation_as_a_run(writer: str) -> None:
    app = create_app(
        ServingConfig(tracking_writer=writer, tracking_duty=1.0, capture_default="full"),
        served_pipeline=served(TEXT),
    )
    async with AsyncTestClient(app) as client:
        ids = []
        for i in range(3):
            response = await client.post("/invoke", json={"parameters": {"message": f"m {i}"}})
            assert response.status_code == 200
            ids.append(response.json()["invocation_id"])
    # Leaving the client shut the app down, which flushes the writer.
    for invocation_id in ids:
        runs = Client().list_pipeline_runs(orchestrator_run_id=invocation_id, hydrate=True)
        assert runs.total == 1
        run = runs.items[0]
        assert run.status == ExecutionStatus.COMPLETED
        assert run.run_metadata["capture.mode"] == "full"
        assert "preview" in run.run_metadata["parameters"]
        output = run.steps["format_result"].outputs["output"][0].load()
        assert output["text"].startswith("m "), "full persists outputs as artifacts"
