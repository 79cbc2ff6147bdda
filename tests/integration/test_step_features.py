"""ZenML step-time features when served, in-process on real snapshots: hooks, the step context,
log_metadata, pipeline settings, reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from zenml.client import Client

from tests.conftest import REPO_ROOT, snapshot_of
from tests.integration.conftest import served
from tests.pipelines.step_context import CANARY
from tests.services import log_events
from zenml_serving.app import create_app
from zenml_serving.config import ServingConfig
from zenml_serving.deployment.hooks import HookFailedError

pytestmark = pytest.mark.anyio

CONTEXT = "tests.pipelines.step_context:context_pipeline"
OUTPUT_URI = "tests.pipelines.step_context:output_uri_pipeline"
BROKEN_INIT = "tests.pipelines.step_context:broken_init_pipeline"
KEY = "an-admin-key-of-20-chars"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def app_for(target: str, **config: Any) -> Litestar:
    return create_app(
        ServingConfig(**{"create_runs": False, "metrics_enabled": False, **config}),
        served_pipeline=served(target),
    )


async def invoke(client: AsyncTestClient[Litestar], **parameters: Any) -> dict[str, Any]:
    response = await client.post("/invoke", json={"parameters": parameters}, headers=AUTH)
    return {**response.json(), "http_status": response.status_code}


class TestInitAndCleanupHooks:
    """on_init runs once at startup with its kwargs, after the pipeline environment is set; its
    return value is every step's pipeline_state; on_cleanup runs once at shutdown."""

    async def test_state_seen_by_every_invocation_and_cleanup_at_shutdown(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        marker = tmp_path / "cleanup.txt"
        monkeypatch.setenv("STEP_CONTEXT_CLEANUP_FILE", str(marker))
        async with AsyncTestClient(app_for(CONTEXT)) as client:
            first = await invoke(client, name="ada")
            second = await invoke(client, name="bob")
            info = (await client.get("/info")).json()
            assert not marker.exists(), "on_cleanup waits for shutdown"
        assert first["outputs"]["output"]["text"] == "hello, ada"
        assert second["outputs"]["output"]["text"] == "hello, bob"
        assert first["outputs"]["output"]["env"] == "from-the-pipeline", "env before on_init"
        served_version = info["served_version"]
        assert served_version["on_init"]["hook"] == "tests.pipelines.step_context.make_state"
        assert served_version["on_init"]["duration_s"] is not None
        assert marker.read_text().count("cleanup") == 1

    async def test_a_raising_on_init_stops_startup_naming_the_hook(self) -> None:
        with pytest.raises(HookFailedError) as raised:
            app_for(BROKEN_INIT)
        message = str(raised.value)
        assert "on_init hook 'tests.pipelines.step_context.broken_init' failed" in message
        assert "FileNotFoundError: model.pkl is missing" in message
        assert "\n" not in message


class TestStepContext:
    """get_step_context() in a served step names this invocation; what needs a stored run
    fails the step with a message naming the call, and the service keeps serving."""

    async def test_context_names_the_step_pipeline_and_invocation(self) -> None:
        async with AsyncTestClient(app_for(CONTEXT)) as client:
            result = await invoke(client, name="ada")
        output = result["outputs"]["output"]
        assert output["step_name"] == "describe_context"
        assert output["pipeline"] == "context_pipeline"
        assert output["run_id"] == result["invocation_id"]
        assert output["run_name"] == f"context_pipeline-serving-{result['invocation_id']}"

    async def test_output_artifact_uri_fails_the_step_naming_the_call(self) -> None:
        async with AsyncTestClient(app_for(OUTPUT_URI)) as client:
            failed = await invoke(client, value=1)
            again = await invoke(client, value=2)
        assert failed["http_status"] == 500
        assert failed["step"] == "wants_output_uri"
        assert failed["error_type"] == "StepContextError"
        assert "get_output_artifact_uri()" in failed["detail"]
        assert "no output artifact exists" in failed["detail"]
        assert again["http_status"] == 500, "the same call fails again: the service still serves"


class TestLogMetadata:
    """log_metadata() in a served step: on the step run (redacted) when the invocation is
    recorded; a counted no-op otherwise; never an error."""

    async def test_recorded_on_the_step_run_with_secrets_redacted(self) -> None:
        async with AsyncTestClient(app_for(CONTEXT, create_runs=True)) as client:
            result = await invoke(client, name="ada")
        assert result["http_status"] == 200
        runs = Client().list_pipeline_runs(
            orchestrator_run_id=result["invocation_id"], hydrate=True
        )
        step_run = runs.items[0].steps["describe_context"]
        assert step_run.run_metadata["greeted"] == "ada"
        assert step_run.run_metadata["length"] == 3
        assert step_run.run_metadata["api_key"] == "[REDACTED]"
        assert CANARY not in str(step_run.run_metadata)

    async def test_not_recorded_is_counted_and_the_step_succeeds(self) -> None:
        async with AsyncTestClient(app_for(CONTEXT, capture_default="none")) as client:
            before = (await client.get("/status")).json()["step_metadata"]["not_recorded"]
            result = await invoke(client, name="ada")
            after = (await client.get("/status")).json()["step_metadata"]["not_recorded"]
        assert result["http_status"] == 200
        assert after == before + 1


class TestPipelineSettings:
    """ResourceSettings.max_concurrency is the default limit (the variable wins);
    DeploymentSettings names the OpenAPI document; FastAPI-only fields are ignored with a
    warning naming them."""

    async def test_settings_apply_and_fastapi_fields_are_named(self) -> None:
        with log_events() as events:
            app = app_for(CONTEXT)
        async with AsyncTestClient(app) as client:
            status = (await client.get("/status")).json()
            schema = (await client.get("/schema/openapi.json")).json()
        assert status["config"]["max_concurrency"] == 3
        assert schema["info"]["title"] == "Greeter"
        assert schema["info"]["description"] == "Greets people from a pipeline state"
        assert schema["info"]["version"] == "2.1.0"
        ignored = [e["setting"] for e in events if e["event"] == "deployment_setting_ignored"]
        assert ignored == ["DeploymentSettings.dashboard_files_path"]

    async def test_the_environment_variable_wins_over_resource_settings(self) -> None:
        app = app_for(CONTEXT, max_concurrency=7, max_concurrency_set=True)
        async with AsyncTestClient(app) as client:
            status = (await client.get("/status")).json()
        assert status["config"]["max_concurrency"] == 7


class TestReloadRoute:
    """POST /admin/reload needs the API key; it swaps in a new version and runs on_init again
    (and on_cleanup for the old one)."""

    async def test_without_a_key_configured_the_route_is_refused(self) -> None:
        async with AsyncTestClient(app_for(CONTEXT)) as client:
            response = await client.post("/admin/reload")
        assert response.status_code == 403
        assert response.json()["type"] == "urn:zenml-serving:problem:admin-disabled"

    async def test_reload_runs_init_for_the_new_version_and_cleanup_for_the_old(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        marker = tmp_path / "cleanup.txt"
        monkeypatch.setenv("STEP_CONTEXT_CLEANUP_FILE", str(marker))
        config = ServingConfig(
            create_runs=False,
            metrics_enabled=False,
            auth_key=KEY,
            deployment_id=snapshot_of(CONTEXT),
            source_root=REPO_ROOT,
        )
        app = create_app(config, served_pipeline=served(CONTEXT))
        async with AsyncTestClient(app) as client:
            unauthenticated = await client.post("/admin/reload")
            reloaded = await client.post("/admin/reload", headers=AUTH)
            info = (await client.get("/info", headers=AUTH)).json()
            result = await invoke(client, name="ada")
        assert unauthenticated.status_code == 401
        assert reloaded.status_code == 200
        body = reloaded.json()
        assert body["status"] == "reloaded"
        assert body["serving_version"] == 2
        assert body["version"]["on_init"]["duration_s"] is not None
        assert info["served_version"]["number"] == 2
        assert info["served_version"]["last_reload"]["status"] == "reloaded"
        assert result["outputs"]["output"]["text"] == "hello, ada"
        assert marker.read_text().count("cleanup") == 2, "old version retired, then shutdown"


class TestReloadInterval:
    """ZENML_SERVING_RELOAD_INTERVAL reloads by itself: always when the pipeline has an
    on_init (its result cannot be compared), otherwise only when an artifact or model version
    changed."""

    async def test_a_pipeline_with_on_init_reloads_every_interval(self) -> None:
        config = ServingConfig(
            create_runs=False,
            metrics_enabled=False,
            reload_interval_s=0.05,
            deployment_id=snapshot_of(CONTEXT),
            source_root=REPO_ROOT,
        )
        async with AsyncTestClient(create_app(config, served_pipeline=served(CONTEXT))) as client:
            for _ in range(200):
                info = (await client.get("/info")).json()["served_version"]
                if info["number"] >= 2:
                    break
                await anyio.sleep(0.05)
            assert info["number"] >= 2
            assert info["last_reload"]["trigger"] == "interval"
            assert (await invoke(client, name="ada"))["http_status"] == 200

    async def test_a_pipeline_without_changes_keeps_its_version(self) -> None:
        text = "examples.text_pipeline:text_pipeline"
        config = ServingConfig(
            create_runs=False,
            metrics_enabled=False,
            reload_interval_s=0.05,
            deployment_id=snapshot_of(text),
            source_root=REPO_ROOT,
        )
        with log_events() as events:
            async with AsyncTestClient(create_app(config, served_pipeline=served(text))) as client:
                for _ in range(200):
                    if any(e["event"] == "reload_unchanged" for e in events):
                        break
                    await anyio.sleep(0.05)
                info = (await client.get("/info")).json()["served_version"]
        assert any(e["event"] == "reload_unchanged" for e in events)
        assert info["number"] == 1
        assert info["last_reload"] is None


class TestExternalArtifact:
    """An ExternalArtifact by ID is loaded once at startup with its materializer, named in
    /info, and every invocation gets it."""

    async def test_loaded_once_and_named(self) -> None:
        target = "tests.pipelines.step_context:external_artifact_pipeline"
        async with AsyncTestClient(app_for(target)) as client:
            first = await invoke(client, key="a")
            second = await invoke(client, key="b")
            info = (await client.get("/info")).json()
        assert (first["outputs"]["output"], second["outputs"]["output"]) == (1, 2)
        (artifact,) = info["served_version"]["artifacts"]
        snapshot = Client().get_snapshot(snapshot_of(target))
        (external,) = snapshot.step_configurations[
            "lookup"
        ].config.external_input_artifacts.values()
        assert artifact["id"] == str(external.id)
        assert artifact["via"] == "external"
        assert info["steps"][0]["inputs"]["table"]["from"] == "artifact"
