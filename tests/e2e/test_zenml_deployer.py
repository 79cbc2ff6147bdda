"""ZenML's own tools against zenml-serving: the deployer flavor, `zenml deployment invoke`,
`invoke_deployment()`, and a standalone service that registers itself.

ZenML's real CLI runs as a subprocess on the session's store; the records it writes are read
back in-process through ZenML's Client, as a user's script would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import pytest

from tests.conftest import REPO_ROOT, new_snapshot
from tests.e2e.conftest import ServiceFactory, wait_until
from zenml_serving.integration import FLAVOR_SOURCE

pytestmark = pytest.mark.e2e

PIPELINE = "tests.pipelines.zenml_native.arithmetic"  # ZenML's source path
TARGET = "tests.pipelines.zenml_native:arithmetic"


def zenml(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ZenML's CLI (`python -m zenml.cli.cli` is what the `zenml` script runs)."""
    result = subprocess.run(
        [sys.executable, "-c", "from zenml.cli.cli import cli; cli()", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"zenml {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def response_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON body `zenml deployment invoke` printed."""
    text = result.stdout
    start, end = text.index("\n{") + 1, text.rindex("\n}") + 2
    body: dict[str, Any] = json.loads(text[start:end])
    return body


def record(name: str) -> Any:
    """The deployment record, fresh from the store."""
    from zenml.client import Client

    return Client().get_deployment(name)


@pytest.fixture(scope="module")
def cli_env(zenml_store_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZENML_SERVING_")}
    env.update(zenml_store_env)
    env.update({"COLUMNS": "200", "ZENML_SERVING_SOURCE_ROOT": str(REPO_ROOT)})
    return env


@pytest.fixture(scope="module")
def stack(cli_env: dict[str, str]) -> str:
    """The flavor registered, a deployer of it (generated auth keys) and a stack using it,
    with the documented commands; the session's active stack is left alone."""
    suffix = uuid.uuid4().hex[:8]
    deployer, stack_name = f"serving-{suffix}", f"serving-stack-{suffix}"
    from zenml.client import Client

    try:  # another test of the session may have registered it already
        Client().get_flavor_by_name_and_type("zenml-serving", "deployer")
    except KeyError:
        zenml("deployer", "flavor", "register", FLAVOR_SOURCE, env=cli_env)
    zenml(
        "deployer", "register", deployer, "--flavor=zenml-serving",
        "--generate_auth_key=True", "--shutdown_grace=5", env=cli_env,
    )  # fmt: skip
    zenml("stack", "register", stack_name, "-o", "default", "-a", "default", "-D", deployer,
          env=cli_env)  # fmt: skip
    return stack_name


@pytest.fixture(scope="module")
def deployed(stack: str, cli_env: dict[str, str]) -> Iterator[str]:
    """`zenml pipeline deploy` of a pipeline with int and bool parameters."""
    name = f"arith-{uuid.uuid4().hex[:8]}"
    zenml("pipeline", "deploy", PIPELINE, "--name", name, "--stack", stack, env=cli_env)
    yield name
    from zenml_serving.integration.process import stop_service

    try:  # a test that failed half-way leaves nothing running
        pid = (record(name).deployment_metadata or {}).get("pid")
    except KeyError:
        return  # deleted by the last test
    if pid is not None:
        stop_service(pid, timeout_s=30)


class TestDeployWithZenML:
    """Deploy, invoke, inspect, redeploy and take down with ZenML's own commands."""

    def test_the_record_says_running_with_url_key_and_process(self, deployed: str) -> None:
        deployment = record(deployed)
        assert deployment.status == "running"
        assert deployment.url.startswith("http://127.0.0.1:")
        assert deployment.auth_key  # generate_auth_key=True
        metadata = deployment.deployment_metadata
        assert psutil.pid_exists(metadata["pid"])
        assert str(metadata["port"]) in deployment.url
        health = httpx.get(metadata["health_url"], timeout=10)
        assert health.status_code == 200
        # the key is required: ZenML's client sends it, others are refused
        assert httpx.post(f"{deployment.url}/invoke", json={}, timeout=10).status_code == 401

    def test_cli_invoke_with_string_arguments(self, deployed: str, cli_env: dict[str, str]) -> None:
        result = zenml("deployment", "invoke", deployed, "--x=4", "--double=true", env=cli_env)
        body = response_of(result)
        assert body["success"] is True
        assert body["outputs"] == {"output": 8}
        assert body["metadata"]["deployment_name"] == deployed
        assert body["metadata"]["deployment_id"] == str(record(deployed).id)
        assert body["metadata"]["parameters_used"] == {"x": 4, "double": True, "fail": False}

    def test_invoke_deployment_in_process(self, deployed: str) -> None:
        from zenml.deployers.utils import invoke_deployment

        body = invoke_deployment(deployed, x=5, double=False)
        assert body["success"] is True
        assert body["outputs"] == {"output": 5}
        assert body["metadata"]["pipeline_name"] == "arithmetic"

    def test_a_failing_pipeline_is_success_false_without_traceback(
        self, deployed: str, cli_env: dict[str, str]
    ) -> None:
        result = zenml("deployment", "invoke", deployed, "--fail=true", env=cli_env)
        body = response_of(result)
        assert body["success"] is False
        assert body["error"] == "step 'scale' raised ValueError: asked to fail"
        assert "Traceback" not in result.stdout + result.stderr
        assert f"zenml deployment logs {deployed}" in result.stdout

    def test_no_wait_answers_a_run_id_that_completes(
        self, deployed: str, cli_env: dict[str, str]
    ) -> None:
        result = zenml("deployment", "invoke", deployed, "--no-wait", "--x=3", env=cli_env)
        run_id = response_of(result)["run_id"]
        deployment = record(deployed)
        headers = {"Authorization": f"Bearer {deployment.auth_key}"}

        def completed() -> bool:
            job = httpx.get(f"{deployment.url}/jobs/{run_id}", headers=headers, timeout=10)
            return bool(
                job.json()["status"] == "completed" and job.json()["outputs"]["output"] == 3
            )

        wait_until(completed, timeout_s=30, what="the submitted run to complete")

    def test_logs_describe_and_refresh(self, deployed: str, cli_env: dict[str, str]) -> None:
        logs = zenml("deployment", "logs", deployed, "--tail", "200", env=cli_env)
        assert "service_ready" in logs.stdout
        refreshed = zenml("deployment", "refresh", deployed, env=cli_env)
        assert "RUNNING" in refreshed.stdout
        listed = zenml("deployment", "list", env=cli_env)
        assert deployed in listed.stdout
        assert record(deployed).status == "running"

    def test_second_deploy_of_the_same_name_replaces_the_process(
        self, deployed: str, stack: str, cli_env: dict[str, str]
    ) -> None:
        old_pid = record(deployed).deployment_metadata["pid"]
        zenml("pipeline", "deploy", PIPELINE, "--name", deployed, "--stack", stack, "--update",
              env=cli_env)  # fmt: skip
        deployment = record(deployed)
        assert deployment.status == "running"
        assert deployment.deployment_metadata["pid"] != old_pid
        assert not _alive(old_pid)
        result = zenml("deployment", "invoke", deployed, "--x=6", env=cli_env)
        assert response_of(result)["outputs"] == {"output": 6}

    def test_deprovision_stops_the_process_and_the_record_says_so(
        self, deployed: str, cli_env: dict[str, str]
    ) -> None:
        pid = record(deployed).deployment_metadata["pid"]
        zenml("deployment", "deprovision", deployed, "--yes", env=cli_env)
        assert not _alive(pid)
        deployment = record(deployed)
        assert deployment.status == "absent"
        assert not deployment.url
        invoked = zenml("deployment", "invoke", deployed, "--x=1", env=cli_env, check=False)
        assert invoked.returncode != 0
        assert "is not running" in invoked.stdout + invoked.stderr

    def test_provision_again_then_delete(self, deployed: str, cli_env: dict[str, str]) -> None:
        zenml("deployment", "provision", deployed, env=cli_env)
        deployment = record(deployed)
        assert deployment.status == "running"
        result = zenml("deployment", "invoke", deployed, "--x=2", "--double=True", env=cli_env)
        assert response_of(result)["outputs"] == {"output": 4}
        pid = deployment.deployment_metadata["pid"]
        zenml("deployment", "delete", deployed, "--yes", env=cli_env)
        assert not _alive(pid)
        with pytest.raises(KeyError):
            record(deployed)


class TestDeployInProcess:
    """`pipeline.deploy(deployment_name=...)` from Python, as in a notebook."""

    def test_deploy_invoke_deprovision(self, stack: str) -> None:
        from zenml.client import Client
        from zenml.deployers.utils import invoke_deployment
        from zenml.utils import source_utils

        from tests.pipelines.zenml_native import arithmetic

        source_utils.set_custom_source_root(str(REPO_ROOT))  # a notebook's is its folder
        client = Client()
        previous = client.active_stack_model.id
        name = f"notebook-{uuid.uuid4().hex[:8]}"
        client.activate_stack(stack)
        try:
            deployment = arithmetic.deploy(deployment_name=name)
            assert deployment.status == "running"
            assert invoke_deployment(name, x=21, double=True)["outputs"] == {"output": 42}
            pid = deployment.deployment_metadata["pid"]
            client.deprovision_deployment(name)
            assert record(name).status == "absent"
            assert not _alive(pid)
            client.delete_deployment(name)
        finally:
            client.activate_stack(previous)


class TestSelfRegistration:
    """A service started by hand with ZENML_SERVING_DEPLOYMENT_NAME keeps one record."""

    def test_register_invoke_and_withdraw(self, service_factory: ServiceFactory) -> None:
        from zenml.client import Client
        from zenml.deployers.utils import invoke_deployment

        name = f"standalone-{uuid.uuid4().hex[:8]}"
        key = uuid.uuid4().hex
        service = service_factory(
            new_snapshot(TARGET),
            ZENML_SERVING_DEPLOYMENT_NAME=name,
            ZENML_SERVING_API="zenml",
            ZENML_SERVING_AUTH_KEY=key,
            ZENML_SERVING_WORKERS="2",
        )

        def registered() -> bool:
            try:
                return bool(record(name).status == "running")
            except KeyError:
                return False

        wait_until(registered, timeout_s=60, what="the service to register itself")
        deployment = record(name)
        assert deployment.url == service.url
        assert deployment.auth_key == key
        assert len(Client().list_deployments(name=name).items) == 1  # two workers, one record

        body = invoke_deployment(name, x="7", double="true")
        assert body["outputs"] == {"output": 14}
        assert body["metadata"]["deployment_name"] == name
        assert body["metadata"]["deployment_id"] == str(deployment.id)

        # ZenML's lifecycle commands know it is not theirs to stop
        assert Client().refresh_deployment(name).status == "running"
        with pytest.raises(Exception, match="registered itself"):
            Client().deprovision_deployment(name)

        assert service.terminate() == 0
        gone = record(name)
        assert gone.status == "absent"
        assert gone.url == ""


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class TestRollingUpdate:
    """Two instances under one name: the one that drains first leaves the record to the one
    that announced itself last."""

    def test_the_record_follows_the_last_announced_instance(
        self, service_factory: ServiceFactory
    ) -> None:
        name = f"rolling-{uuid.uuid4().hex[:8]}"
        env = {"ZENML_SERVING_DEPLOYMENT_NAME": name, "ZENML_SERVING_API": "zenml"}
        snapshot_id = new_snapshot(TARGET)
        old = service_factory(snapshot_id, **env)
        wait_until(lambda: _url_of(name) == old.url, timeout_s=60, what="the first instance")
        new = service_factory(snapshot_id, **env)
        wait_until(lambda: _url_of(name) == new.url, timeout_s=60, what="the second instance")

        assert old.terminate() == 0
        assert record(name).status == "running"
        assert record(name).url == new.url
        assert new.terminate() == 0
        assert record(name).status == "absent"


def _url_of(name: str) -> str | None:
    try:
        return str(record(name).url)
    except KeyError:
        return None
