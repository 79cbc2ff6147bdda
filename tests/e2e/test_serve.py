"""The core path as a user runs it: `zenml-serving serve` (granian) on a real snapshot."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, snapshot_of
from tests.e2e.conftest import ServiceFactory, ServiceProcess, free_port, start_service

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def text_service(
    zenml_store_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """The default example, served once for this module."""
    service = start_service(
        snapshot_of("examples.text_pipeline:text_pipeline"),
        zenml_store_env,
        tmp_path_factory.mktemp("text-service"),
    )
    yield service
    service.terminate()


class TestInvokeOverHttp:
    """A real granian process answers /invoke like the README says."""

    def test_outputs_come_from_the_request_parameters(self, text_service: ServiceProcess) -> None:
        response = text_service.client.post(
            "/invoke", json={"parameters": {"message": "I  LOVE reliable tools", "loud": True}}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "completed"
        assert body["outputs"] == {
            "output": {"text": "I LOVE RELIABLE TOOLS", "score": 0.5, "label": "positive"}
        }
        assert [s["name"] for s in body["steps"]] == ["normalise", "score", "format_result"]
        assert response.headers["x-invocation-id"] == body["invocation_id"]

    def test_unknown_parameter_is_a_422_that_names_it(self, text_service: ServiceProcess) -> None:
        response = text_service.client.post("/invoke", json={"parameters": {"mesage": "typo"}})
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in response.json()["errors"]] == ["parameters.mesage"]

    def test_malformed_json_is_a_400(self, text_service: ServiceProcess) -> None:
        response = text_service.client.post(
            "/invoke", content=b'{"parameters": ', headers={"content-type": "application/json"}
        )
        assert response.status_code == 400

    def test_health_and_info_describe_the_snapshot(self, text_service: ServiceProcess) -> None:
        health = text_service.client.get("/health").json()
        info = text_service.client.get("/info").json()
        assert health["status"] == "ok"
        assert health["snapshot_id"] == info["snapshot"]["id"]
        assert info["pipeline"]["name"] == "text_pipeline"
        assert set(info["pipeline"]["parameters_schema"]["properties"]) == {"message", "loud"}


class TestStepFailure:
    """A failing step is answered clearly and the service keeps serving."""

    def test_failure_names_the_step_and_later_requests_succeed(
        self, service_factory: ServiceFactory
    ) -> None:
        service = service_factory(snapshot_of("examples.failing:failing_pipeline"))
        failed = service.client.post("/invoke", json={"parameters": {"text": "boom now"}})
        assert failed.status_code == 500
        problem = failed.json()
        assert problem["step"] == "validate"
        assert problem["error_type"] == "ValueError"
        assert "forbidden word" in problem["detail"]
        assert "Traceback" not in failed.text
        ok = service.client.post("/invoke", json={"parameters": {"text": "fine"}})
        assert ok.status_code == 200
        assert ok.json()["outputs"] == {"output": "ok: fine"}
        log = service.log()
        assert '"exc_type": "ValueError"' in log, "the traceback belongs in the log"
        assert "boom now" not in log, "frame locals (request payloads) must never be logged"


class TestProcessLifecycle:
    """Startup errors are one clear line; SIGTERM ends the process cleanly."""

    def test_sigterm_exits_with_status_zero(self, service_factory: ServiceFactory) -> None:
        service = service_factory(snapshot_of("examples.text_pipeline:text_pipeline"))
        assert service.client.post("/invoke", json={}).status_code == 200
        assert service.terminate() == 0
        assert "service_stopped" in service.log()

    def test_unknown_snapshot_id_stops_startup_with_what_to_do(
        self, zenml_store_env: dict[str, str], tmp_path: Path
    ) -> None:
        service = start_service(
            "00000000-0000-4000-8000-000000000000", zenml_store_env, tmp_path, wait=False
        )
        code = service.process.wait(120)
        assert code != 0
        log = service.log()
        assert "no snapshot or deployment with ID 00000000-0000-4000-8000-000000000000" in log
        assert "zenml-serving snapshot" in log
        assert "Traceback" not in log

    def test_unreachable_store_stops_startup_without_leaking_its_password(
        self, zenml_store_env: dict[str, str], tmp_path: Path
    ) -> None:
        closed_port = free_port()  # nothing listens there
        service = start_service(
            "00000000-0000-4000-8000-000000000000",
            zenml_store_env,
            tmp_path,
            wait=False,
            ZENML_STORE_URL=f"mysql://zenml:s3cret-pw@127.0.0.1:{closed_port}/zenml",
        )
        code = service.process.wait(180)
        assert code != 0
        log = service.log()
        failure = next(line for line in log.splitlines() if '"startup_failed"' in line)
        assert "cannot open the ZenML store" in failure
        assert "check ZENML_STORE_URL" in failure
        assert "s3cret-pw" not in log

    def test_invalid_configuration_is_refused_before_serving(
        self, zenml_store_env: dict[str, str]
    ) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "zenml_serving", "serve"],
            cwd=REPO_ROOT,
            env={**zenml_store_env, "ZENML_PIPELINE_DEPLOYMENT_ID": "not-a-uuid", "PATH": ""},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [
            "zenml-serving: error: ZENML_PIPELINE_DEPLOYMENT_ID='not-a-uuid' is invalid: "
            "expected a UUID"
        ]
