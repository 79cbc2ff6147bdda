"""Chunks are delivered, never recorded: a streamed job's chunks reach its stream, and nothing
of them reaches the ZenML store, even when the run is recorded in full (in-process app, real
store, the tracking writer flushed at shutdown)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from zenml.client import Client

from tests.integration.conftest import served
from tests.integration.test_capture_tracking import store_bytes
from tests.pipelines.chunks import CHUNK_MARK
from zenml_serving.app import create_app
from zenml_serving.config import ServingConfig

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize("mode", ["full", "none"])
async def test_chunks_reach_the_stream_and_never_the_store(mode: str) -> None:
    app = create_app(
        ServingConfig(capture_default=mode),
        served_pipeline=served("tests.pipelines.chunks:chunks_pipeline"),
    )
    async with AsyncTestClient(app) as client:
        accepted = await client.post("/invoke?mode=async", json={"parameters": {"count": 4}})
        job_id = accepted.json()["job_id"]
        events: list[dict[str, Any]] = []
        async with client.stream("GET", f"/stream/{job_id}") as response:
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
        for _ in range(100):
            if (await client.get(f"/jobs/{job_id}")).json()["status"] == "completed":
                break
            await asyncio.sleep(0.05)

    chunks = [e["chunk"] for e in events if e["type"] == "step.chunk"]
    assert [c["mark"] for c in chunks] == [CHUNK_MARK] * 4
    runs = Client().list_pipeline_runs(orchestrator_run_id=job_id).items
    assert len(runs) == (1 if mode == "full" else 0)  # full records the run: not its chunks
    assert CHUNK_MARK.encode() not in store_bytes()
