"""Real inference pipelines under real granian services: a scikit-learn model trained here (a
few hundred rows) and served three ways (examples/churn), several workers, reload under load,
a failing on_init and a failing reload."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from zenml import Model
from zenml.client import Client
from zenml.enums import ModelStages

from tests.conftest import snapshot_of
from tests.e2e.conftest import ServiceFactory, ServiceProcess, wait_until

ON_INIT = "examples.churn.inference:churn_inference"
BY_ARTIFACT = "examples.churn.inference:churn_inference_by_artifact"
BY_MODEL = "examples.churn.inference:churn_inference_by_model"
CONTEXT = "tests.pipelines.step_context:context_pipeline"
BROKEN_INIT = "tests.pipelines.step_context:broken_init_pipeline"
KEY = "e2e-admin-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
CUSTOMER = {"tenure_months": 24.0, "support_calls": 2.0, "monthly_charges": 70.0}


def train(seed: int) -> str:
    """Run the example training pipeline in this process; return the new model version."""
    from examples.churn.training import churn_training

    run = churn_training.with_options(enable_cache=False)(rows=300, seed=seed)
    assert run is not None
    assert run.model_version is not None
    return str(run.model_version.name)


def promote(version: str) -> None:
    Model(name="churn", version=version).set_stage(ModelStages.PRODUCTION, force=True)


@pytest.fixture(scope="module")
def production_version() -> str:
    """A trained churn model in production (tests that change the stage restore it)."""
    version = train(seed=1)
    promote(version)
    return version


def predict(service: ServiceProcess, **headers: str) -> dict[str, Any]:
    response = service.client.post(
        "/invoke", json={"parameters": {"features": CUSTOMER}}, headers=headers
    )
    assert response.status_code == 200, response.text
    output: dict[str, Any] = response.json()["outputs"]["output"]
    return output


class TestIdioms:
    """Each way users write an inference pipeline serves predictions, and /info names what
    was loaded."""

    def test_on_init_loads_the_production_model_once(
        self, service_factory: ServiceFactory, production_version: str
    ) -> None:
        service = service_factory(snapshot_of(ON_INIT))
        output = predict(service)
        assert output["model_version"] == production_version
        assert 0.0 <= output["churn_probability"] <= 1.0
        info = service.client.get("/info").json()["served_version"]
        assert info["on_init"]["hook"] == "examples.churn.hooks.load_model"
        assert info["on_init"]["duration_s"] > 0
        assert '"event": "pipeline_loaded"' in service.log()

    def test_client_artifact_in_the_body_is_loaded_and_pinned(
        self, service_factory: ServiceFactory, production_version: str
    ) -> None:
        latest = Client().get_artifact_version("churn-model")
        service = service_factory(snapshot_of(BY_ARTIFACT))
        output = predict(service)
        assert output["model_version"] == str(latest.version), "the artifact's version"
        (artifact,) = service.client.get("/info").json()["served_version"]["artifacts"]
        assert artifact == {
            "id": str(latest.id),
            "name": "churn-model",
            "version": str(latest.version),
            "via": "client",
            "consumers": ["predict.model"],
            "model_version": None,
        }
        steps = service.client.get("/info").json()["steps"]
        assert steps[0]["inputs"]["model"]["from"] == "artifact"

    def test_pipeline_model_artifact_is_loaded_from_the_production_version(
        self, service_factory: ServiceFactory, production_version: str
    ) -> None:
        service = service_factory(snapshot_of(BY_MODEL))
        output = predict(service)
        assert output["model_version"] == production_version, "from get_step_context()"
        served = service.client.get("/info").json()["served_version"]
        (model_version,) = served["model_versions"]
        assert model_version["model"] == "churn"
        assert model_version["version"] == production_version
        assert model_version["stage"] == "production"
        (artifact,) = served["artifacts"]
        assert artifact["via"] == "model"
        assert artifact["model_version"]["id"] == model_version["id"]


class TestWorkers:
    """With several workers each loads its own pipeline state."""

    def test_each_worker_runs_on_init_and_sees_its_own_state(
        self, service_factory: ServiceFactory
    ) -> None:
        service = service_factory(snapshot_of(CONTEXT), ZENML_SERVING_WORKERS="2")
        seen: dict[int, int] = {}

        def call() -> None:
            with httpx.Client(base_url=service.url, timeout=30.0) as client:
                body = client.post("/invoke", json={"parameters": {"name": "w"}}).json()
                output = body["outputs"]["output"]
                seen[output["pid"]] = output["state_pid"]

        for _ in range(40):
            threads = [threading.Thread(target=call) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            if len(seen) == 2:
                break
        assert len(seen) == 2, "both workers answered"
        assert all(pid == state_pid for pid, state_pid in seen.items()), seen
        assert service.log().count('"event": "pipeline_loaded"') == 2


class TestReloadWithWorkers:
    """An admin reload reaches one worker; the server's other workers follow by themselves."""

    def test_every_worker_serves_the_new_version(
        self, service_factory: ServiceFactory, production_version: str
    ) -> None:
        service = service_factory(
            snapshot_of(ON_INIT), ZENML_SERVING_AUTH_KEY=KEY, ZENML_SERVING_WORKERS="2"
        )
        wait_until(
            lambda: service.log().count('"event": "service_ready"') == 2, what="both workers"
        )
        new_version = train(seed=3)
        promote(new_version)
        try:
            response = service.client.post("/admin/reload", headers=AUTH)
            assert response.status_code == 200, response.text
            wait_until(
                lambda: '"trigger": "another worker"' in service.log(),
                what="the other worker following",
            )
            for _ in range(20):  # new connections: spread over both workers
                with httpx.Client(base_url=service.url, timeout=30.0, headers=AUTH) as client:
                    response = client.post("/invoke", json={"parameters": {"features": CUSTOMER}})
                    assert response.json()["outputs"]["output"]["model_version"] == new_version
        finally:
            promote(production_version)
        assert service.log().count('"event": "reloaded"') == 2


class TestFailures:
    """A raising on_init stops startup naming the hook; a failing reload keeps serving."""

    def test_failing_on_init_stops_startup_with_one_line(
        self, service_factory: ServiceFactory
    ) -> None:
        service = service_factory(snapshot_of(BROKEN_INIT), wait=False)
        service.process.wait(90)
        assert service.process.returncode != 0
        failures = [line for line in service.log().splitlines() if "startup_failed" in line]
        assert failures, service.log()
        assert "on_init hook 'tests.pipelines.step_context.broken_init' failed" in failures[0]
        assert "FileNotFoundError: model.pkl is missing" in failures[0]

    def test_failing_reload_keeps_the_old_version_serving(
        self, service_factory: ServiceFactory, production_version: str
    ) -> None:
        service = service_factory(snapshot_of(ON_INIT), ZENML_SERVING_AUTH_KEY=KEY)
        assert predict(service, **AUTH)["model_version"] == production_version
        client = Client()
        client.update_model_version(
            model_name_or_id="churn",
            version_name_or_id=production_version,
            stage=ModelStages.ARCHIVED,
            force=True,
        )
        try:
            response = service.client.post("/admin/reload", headers=AUTH)
        finally:
            promote(production_version)
        assert response.status_code == 503
        problem = response.json()
        assert problem["type"] == "urn:zenml-serving:problem:reload-failed"
        assert "on_init hook 'examples.churn.hooks.load_model' failed" in problem["detail"]
        assert problem["serving_version"] == 1
        assert predict(service, **AUTH)["model_version"] == production_version
        info = service.client.get("/info", headers=AUTH).json()["served_version"]
        assert info["number"] == 1
        assert info["last_reload"]["status"] == "failed"
        assert '"event": "reload_failed"' in service.log()
        metrics = service.client.get("/metrics", headers=AUTH).text
        assert 'zenml_serving_reloads_total{outcome="failed"} 1.0' in metrics


class TestReloadUnderLoad:
    """Promote a new model version and reload while clients keep calling: no failed request,
    and every client sees the old version's predictions, then the new one's."""

    def test_zero_failures_and_versions_in_order(
        self, service_factory: ServiceFactory, production_version: str
    ) -> None:
        service = service_factory(snapshot_of(ON_INIT), ZENML_SERVING_AUTH_KEY=KEY)
        stop = threading.Event()
        answers: list[list[tuple[int, str | None]]] = [[], []]

        def load(seen: list[tuple[int, str | None]]) -> None:
            with httpx.Client(base_url=service.url, timeout=30.0, headers=AUTH) as client:
                while not stop.is_set():
                    response = client.post("/invoke", json={"parameters": {"features": CUSTOMER}})
                    version = None
                    if response.status_code == 200:
                        version = response.json()["outputs"]["output"]["model_version"]
                    seen.append((response.status_code, version))

        threads = [threading.Thread(target=load, args=(seen,)) for seen in answers]
        for thread in threads:
            thread.start()
        try:
            wait_until(lambda: min(map(len, answers)) >= 10, what="load running")
            new_version = train(seed=2)
            promote(new_version)
            response = service.client.post("/admin/reload", headers=AUTH)
            assert response.status_code == 200, response.text
            assert response.json()["serving_version"] == 2
            counts = [len(seen) for seen in answers]
            wait_until(
                lambda: all(len(s) >= c + 10 for s, c in zip(answers, counts, strict=True)),
                what="load after the reload",
            )
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
            promote(production_version)
        for seen in answers:
            assert {status for status, _ in seen} == {200}
            versions = [version for _, version in seen]
            switch = versions.index(new_version)
            assert set(versions[:switch]) == {production_version}
            assert set(versions[switch:]) == {new_version}
            assert switch > 0
        assert '"event": "reloaded"' in service.log()
        assert '"event": "version_retired"' in service.log()
