"""Kept jobs are bounded by count and bytes on a real service (issue 17, defects 3 and 4).

ZENML_SERVING_MAX_JOBS holds at every moment, not only after the next eviction round: a new
async job evicts the oldest finished one, and is refused with 429 problem+json and
Retry-After while every kept job is unfinished. ZENML_SERVING_MAX_JOB_BYTES bounds the bytes
kept; `GET /jobs` pages never carry outputs (they come from `GET /jobs/{id}`), and a job whose
outputs alone pass the bound ends `failed` instead of being kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import snapshot_of
from tests.e2e.conftest import ServiceFactory, wait_until
from tests.e2e.test_execution import SLOW, slow_params

pytestmark = pytest.mark.e2e

TEXT = "examples.text_pipeline:text_pipeline"


def listed_total(client: httpx.Client) -> int:
    return int(client.get("/jobs", params={"limit": 1}).json()["total"])


class TestCountBound:
    """At most ZENML_SERVING_MAX_JOBS records, whatever the rate of submissions."""

    @pytest.mark.parametrize("workers", ["1", "2"], ids=["memory", "sqlite"])
    def test_never_more_than_the_bound_and_429_when_all_are_unfinished(
        self, service_factory: ServiceFactory, tmp_path: Path, workers: str
    ) -> None:
        service = service_factory(
            snapshot_of(SLOW),
            ZENML_SERVING_MAX_JOBS="20",
            ZENML_SERVING_WORKERS=workers,
            ZENML_SERVING_RUNTIME_DIR=str(tmp_path / "runtime"),
            ZENML_SERVING_MAX_CONCURRENCY="30",
        )
        client = service.client
        for index in range(120):
            accepted = client.post("/invoke?mode=async", json=slow_params(tmp_path / f"q{index}"))
            assert accepted.status_code == 202, accepted.text
            if index % 10 == 9:
                assert listed_total(client) <= 20
        wait_until(
            lambda: all(
                j["status"] == "completed"
                for j in client.get("/jobs", params={"limit": 500}).json()["jobs"]
            ),
            what="the quick jobs to finish",
        )
        assert listed_total(client) == 20

        slow: list[str] = []
        refused: httpx.Response | None = None
        for index in range(25):
            response = client.post(
                "/invoke?mode=async", json=slow_params(tmp_path / f"s{index}", 3.0)
            )
            if response.status_code != 202:
                refused = response
                break
            slow.append(response.json()["job_id"])
        assert refused is not None, "the 21st unfinished job is refused"
        assert len(slow) == 20
        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert int(refused.headers["retry-after"]) >= 1
        problem = refused.json()
        assert problem["type"] == "urn:zenml-serving:problem:jobs-full"
        assert "ZENML_SERVING_MAX_JOBS" in problem["detail"]
        assert problem["retry_after_s"] == int(refused.headers["retry-after"])
        assert listed_total(client) == 20
        for job_id in slow:
            assert client.get(f"/jobs/{job_id}").status_code == 200, "nothing unfinished went"
        sync = client.post("/invoke", json=slow_params(tmp_path / "sync"))
        assert sync.status_code == 200, "sync invocations keep no job and still work"


class TestByteBound:
    """Job memory is bounded by ZENML_SERVING_MAX_JOB_BYTES; listing never sends outputs."""

    def test_kept_bytes_stay_bounded_and_lists_carry_no_outputs(
        self, service_factory: ServiceFactory
    ) -> None:
        budget = 400_000
        service = service_factory(snapshot_of(TEXT), ZENML_SERVING_MAX_JOB_BYTES=str(budget))
        client = service.client
        message = "calm " * 10_000  # ~50 kB of outputs per job
        job_ids: list[str] = []
        for _ in range(30):
            accepted = client.post("/invoke?mode=async", json={"parameters": {"message": message}})
            assert accepted.status_code == 202, accepted.text
            job_id = accepted.json()["job_id"]
            job_ids.append(job_id)
            wait_until(
                lambda j=job_id: client.get(f"/jobs/{j}").json()["status"] == "completed",
                what="the job to finish",
            )
        page = client.get("/jobs", params={"limit": 500})
        listed = page.json()
        assert listed["total"] * len(message) <= budget, "old jobs went to keep the bytes"
        assert listed["total"] >= 2
        assert len(page.content) < 20_000, "a page of large results is small"
        assert all("outputs" not in j for j in listed["jobs"])
        newest = client.get(f"/jobs/{job_ids[-1]}").json()
        assert newest["outputs"]["output"]["text"] == message.strip()
        assert client.get(f"/jobs/{job_ids[0]}").status_code == 404

    def test_a_job_whose_outputs_pass_the_bound_ends_failed(
        self, service_factory: ServiceFactory
    ) -> None:
        service = service_factory(snapshot_of(TEXT), ZENML_SERVING_MAX_JOB_BYTES="100000")
        accepted = service.client.post(
            "/invoke?mode=async", json={"parameters": {"message": "calm " * 40_000}}
        )
        assert accepted.status_code == 202
        job_id = accepted.json()["job_id"]
        job: dict[str, Any] = {}

        def finished() -> bool:
            job.update(service.client.get(f"/jobs/{job_id}").json())
            return job["status"] not in ("queued", "running")

        wait_until(finished, what="the job to finish")
        assert job["status"] == "failed"
        assert job["error"]["type"] == "OutputsTooLarge"
        assert "ZENML_SERVING_MAX_JOB_BYTES" in job["error"]["message"]
        assert "outputs" not in job

    def test_the_openapi_document_shows_lists_without_outputs(
        self, service_factory: ServiceFactory
    ) -> None:
        service = service_factory(snapshot_of(TEXT))
        document = service.client.get("/schema/openapi.json").json()
        schemas = document["components"]["schemas"]
        assert "outputs" not in schemas["JobSummary"]["properties"]
        assert "outputs" in schemas["JobView"]["properties"]
        items = schemas["JobList"]["properties"]["jobs"]["items"]
        assert items["$ref"].endswith("/JobSummary")
        assert "429" in document["paths"]["/invoke"]["post"]["responses"]
