"""`ZENML_SERVING_API=zenml`: `/invoke` and `/submit` answer ZenML's client as ZenML's server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.integration.conftest import served
from zenml_serving.app import create_app
from zenml_serving.config import ServingConfig

pytestmark = pytest.mark.anyio

ARITHMETIC = "tests.pipelines.zenml_native:arithmetic"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def zenml_client() -> AsyncIterator[AsyncTestClient[Litestar]]:
    app = create_app(
        ServingConfig(api_style="zenml", create_runs=False), served_pipeline=served(ARITHMETIC)
    )
    async with AsyncTestClient(app) as client:
        yield client


@pytest.fixture
async def native_client() -> AsyncIterator[AsyncTestClient[Litestar]]:
    app = create_app(ServingConfig(create_runs=False), served_pipeline=served(ARITHMETIC))
    async with AsyncTestClient(app) as client:
        yield client


class TestZenMLInvoke:
    """ZenML's body in, ZenML's fields out; strings become the declared types."""

    async def test_strings_from_the_cli_are_converted(
        self, zenml_client: AsyncTestClient[Litestar]
    ) -> None:
        response = await zenml_client.post(
            "/invoke", json={"parameters": {"x": "4", "double": "true"}}
        )
        assert response.status_code == 200
        body = response.json()
        assert body["success"] is True
        assert body["outputs"] == {"output": 8}
        assert body["error"] is None
        assert body["execution_time"] >= 0
        metadata = body["metadata"]
        assert metadata["pipeline_name"] == "arithmetic"
        assert metadata["snapshot_id"] == str(served(ARITHMETIC).snapshot_id)
        assert metadata["parameters_used"] == {"x": 4, "double": True, "fail": False}
        assert metadata["run_id"] is None
        assert metadata["run_name"] is None  # ZENML_SERVING_CREATE_RUNS=false: no run
        assert set(metadata) >= {"deployment_id", "deployment_name", "snapshot_name"}

    async def test_a_failing_step_is_success_false_with_the_error(
        self, zenml_client: AsyncTestClient[Litestar]
    ) -> None:
        response = await zenml_client.post("/invoke", json={"parameters": {"x": 1, "fail": "yes"}})
        assert response.status_code == 200
        body = response.json()
        assert body["success"] is False
        assert body["outputs"] is None
        assert body["error"] == "step 'scale' raised ValueError: asked to fail"
        assert "Traceback" not in response.text

    @pytest.mark.parametrize(
        ("parameters", "field"),
        [
            ({"y": 1}, "parameters.y"),
            ({"x": "four"}, "parameters.x"),
            ({"double": "maybe"}, "parameters.double"),
        ],
    )
    async def test_unknown_or_unconvertible_parameters_are_422(
        self, zenml_client: AsyncTestClient[Litestar], parameters: dict[str, Any], field: str
    ) -> None:
        response = await zenml_client.post("/invoke", json={"parameters": parameters})
        assert response.status_code == 422
        assert [e["field"] for e in response.json()["errors"]] == [field]

    async def test_zenml_body_fields_are_accepted_and_typos_refused(
        self, zenml_client: AsyncTestClient[Litestar]
    ) -> None:
        ok = await zenml_client.post(
            "/invoke",
            json={
                "parameters": {"x": 2},
                "run_name": "my-run",
                "skip_artifact_materialization": True,
            },
        )
        assert ok.status_code == 200
        assert ok.json()["outputs"] == {"output": 2}
        typo = await zenml_client.post("/invoke", json={"parameters": {}, "run_nme": "x"})
        assert typo.status_code == 422


class TestZenMLSubmit:
    """`POST /submit` queues a job and answers its id as `run_id`."""

    async def test_submit_answers_run_id_of_a_job(
        self, zenml_client: AsyncTestClient[Litestar]
    ) -> None:
        response = await zenml_client.post("/submit", json={"parameters": {"x": "3"}})
        assert response.status_code == 202
        run_id = response.json()["run_id"]
        for _ in range(200):
            job = (await zenml_client.get(f"/jobs/{run_id}")).json()
            if job["status"] == "completed":
                break
            await asyncio.sleep(0.02)
        assert job["status"] == "completed"
        assert job["outputs"] == {"output": 3}


class TestNativeContractUnchanged:
    """Without the switch: strict types, problem+json failures, no `/submit`; the success
    body carries ZenML's `success` and `execution_time` as well."""

    async def test_strings_are_still_refused(
        self, native_client: AsyncTestClient[Litestar]
    ) -> None:
        response = await native_client.post("/invoke", json={"parameters": {"x": "4"}})
        assert response.status_code == 422

    async def test_failure_is_still_a_500_problem(
        self, native_client: AsyncTestClient[Litestar]
    ) -> None:
        response = await native_client.post("/invoke", json={"parameters": {"fail": True}})
        assert response.status_code == 500
        assert response.headers["content-type"].startswith("application/problem+json")

    async def test_success_body_has_zenml_fields(
        self, native_client: AsyncTestClient[Litestar]
    ) -> None:
        response = await native_client.post("/invoke", json={"parameters": {"x": 5}})
        body = response.json()
        assert body["success"] is True
        assert body["execution_time"] == pytest.approx(body["duration_ms"] / 1000)
        assert body["outputs"] == {"output": 5}

    async def test_no_submit_route(self, native_client: AsyncTestClient[Litestar]) -> None:
        response = await native_client.post("/submit", json={"parameters": {}})
        assert response.status_code in (404, 405)


class TestBothContractsInZenMLMode:
    """With the switch, `?mode=` still gives the native answers (the playground uses it), and
    the OpenAPI document describes both."""

    async def test_explicit_mode_answers_natively(
        self, zenml_client: AsyncTestClient[Litestar]
    ) -> None:
        sync = await zenml_client.post("/invoke?mode=sync", json={"parameters": {"x": "2"}})
        assert sync.status_code == 200
        assert sync.json()["status"] == "completed"
        assert sync.json()["outputs"] == {"output": 2}
        failed = await zenml_client.post("/invoke?mode=sync", json={"parameters": {"fail": True}})
        assert failed.status_code == 500
        assert failed.json()["step"] == "scale"
        queued = await zenml_client.post("/invoke?mode=async", json={"parameters": {}})
        assert queued.status_code == 202
        assert queued.headers["location"] == f"/jobs/{queued.json()['job_id']}"

    async def test_openapi_document_names_both_routes(
        self, zenml_client: AsyncTestClient[Litestar]
    ) -> None:
        document = (await zenml_client.get("/schema/openapi.json")).json()
        assert {"/invoke", "/submit"} <= set(document["paths"])
        invoke = document["paths"]["/invoke"]["post"]
        assert {"200", "202", "422", "500"} <= set(invoke["responses"])
        assert "ZenMLInvokeRequest" in str(invoke["requestBody"])

    async def test_the_docs_link_zenml_prints_leads_to_the_documentation(
        self, zenml_client: AsyncTestClient[Litestar]
    ) -> None:
        docs = await zenml_client.get("/docs")
        assert docs.status_code == 200
        assert docs.url.path == "/playground"
        redoc = await zenml_client.get("/redoc")
        assert redoc.status_code == 200
        assert redoc.url.path == "/schema/openapi.json"
        assert "/invoke" in redoc.json()["paths"]


class TestZenMLTimeout:
    """A timed-out run is also `success: false` (the error says what to raise)."""

    async def test_timeout_is_success_false(self) -> None:
        app = create_app(
            ServingConfig(api_style="zenml", create_runs=False, request_timeout_s=0.2),
            served_pipeline=served("tests.pipelines.slow:slow_pipeline"),
        )
        async with AsyncTestClient(app) as client:
            response = await client.post("/invoke", json={"parameters": {"first_s": "0.5"}})
        assert response.status_code == 200
        body = response.json()
        assert body["success"] is False
        assert body["outputs"] is None
        assert "timed out" in body["error"]
