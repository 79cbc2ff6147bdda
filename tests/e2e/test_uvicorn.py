"""`uvicorn zenml_serving.app:app`, the serving spec's start line, serves and drains."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO_ROOT, snapshot_of
from tests.e2e.conftest import free_port, wait_until

pytestmark = pytest.mark.e2e

TEXT = "examples.text_pipeline:text_pipeline"


def uvicorn(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "zenml_serving.app:app",
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip


class TestUvicorn:
    """The module-level `app` is built from the environment in the server's process."""

    def test_serves_invokes_and_drains(
        self, zenml_store_env: dict[str, str], tmp_path: Path
    ) -> None:
        port = free_port()
        env = {
            **os.environ,
            **zenml_store_env,
            "ZENML_PIPELINE_DEPLOYMENT_ID": str(snapshot_of(TEXT)),
            "ZENML_SERVING_CREATE_RUNS": "false",
        }
        process = uvicorn(env, port, tmp_path / "uvicorn.log")
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail((tmp_path / "uvicorn.log").read_text())
            try:
                return httpx.get(f"{url}/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        try:
            wait_until(ready, timeout_s=90, what="uvicorn to serve")
            answer = httpx.post(
                f"{url}/invoke", json={"parameters": {"message": "I love fast tools"}}, timeout=30
            )
            assert answer.status_code == 200
            assert answer.json()["outputs"]["output"]["text"] == "i love fast tools"
        finally:
            process.send_signal(signal.SIGTERM)
            # uvicorn re-raises the signal once it has shut down cleanly
            assert process.wait(60) in (0, -signal.SIGTERM)
        log = (tmp_path / "uvicorn.log").read_text()
        assert '"drain_finished"' in log
        assert '"service_stopped"' in log

    def test_a_bad_configuration_stops_startup_with_the_variable_named(
        self, zenml_store_env: dict[str, str], tmp_path: Path
    ) -> None:
        env = {**os.environ, **zenml_store_env, "ZENML_PIPELINE_DEPLOYMENT_ID": "not-a-uuid"}
        process = uvicorn(env, free_port(), tmp_path / "uvicorn.log")
        assert process.wait(90) != 0
        log = (tmp_path / "uvicorn.log").read_text()
        assert "ZENML_PIPELINE_DEPLOYMENT_ID='not-a-uuid' is invalid" in log
        assert "Traceback" not in log
