"""Fixtures that run the service as users run it: a real granian process on a loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.e2e


def wait_until(
    predicate: Callable[[], object], timeout_s: float = 30.0, what: str = "condition"
) -> None:
    """Poll `predicate` until true; fail after `timeout_s` (a guard, not a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ServiceProcess:
    """A `zenml-serving serve` process (granian) and an HTTP client for it."""

    process: subprocess.Popen[str]
    port: int
    log_path: Path
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=30.0)

    @property
    def url(self) -> str:
        """Base URL of the service."""
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        """Block until /health answers 200; fail with the process log otherwise."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"service exited with {self.process.returncode}:\n{self.log()}")
            try:
                if self.client.get("/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        pytest.fail(f"service not ready after {timeout_s} s:\n{self.log()}")

    def terminate(self, timeout_s: float = 60.0) -> int:
        """SIGTERM, wait for exit, return the exit code (SIGKILL if it hangs)."""
        self.client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return int(self.process.returncode)


def start_service(
    snapshot_id: object,
    store_env: dict[str, str],
    tmp_path: Path,
    *,
    wait: bool = True,
    **env: str,
) -> ServiceProcess:
    """Start `python -m zenml_serving serve` for `snapshot_id` with extra ZENML_* `env`."""
    port = free_port()
    log_path = tmp_path / f"service-{port}.log"
    full_env = {
        **os.environ,
        **store_env,
        "ZENML_PIPELINE_DEPLOYMENT_ID": str(snapshot_id),
        "ZENML_SERVICE_HOST": "127.0.0.1",
        "ZENML_SERVICE_PORT": str(port),
        "ZENML_SERVING_SHUTDOWN_GRACE": "10",
        **env,
    }
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "zenml_serving", "serve"],
            cwd=REPO_ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    service = ServiceProcess(process=process, port=port, log_path=log_path)
    if wait:
        service.wait_ready()
    return service


ServiceFactory = Callable[..., ServiceProcess]


@pytest.fixture
def service_factory(zenml_store_env: dict[str, str], tmp_path: Path) -> Iterator[ServiceFactory]:
    """Start services with `factory(snapshot_id, **env)`; all are stopped after the test."""
    started: list[ServiceProcess] = []

    def factory(snapshot_id: object, *, wait: bool = True, **env: str) -> ServiceProcess:
        service = start_service(snapshot_id, zenml_store_env, tmp_path, wait=wait, **env)
        started.append(service)
        return service

    yield factory
    for service in started:
        service.terminate()
