"""ZenMLServingDeployer: ZenML's deployment lifecycle, with zenml-serving as the server.

ZenML's `BaseDeployer` keeps the deployment record (create, auth key, status, url); this
class only does what it asks of a flavor, on this machine:

- provision: stop the deployment's previous process if any, pick the port (the configured
  one, else the previous one if free, else a free one), start `zenml-serving serve` in the
  background with the deployment's ID and auth key and `ZENML_SERVING_API=zenml`, wait for
  `/health`, and answer `running` with the url and what refresh needs (`pid`, `port`,
  `address`, `log_file`, `health_url`);
- state (refresh): the process is alive and is ours, then ZenML probes `/health`;
- logs: the service's log file (`--tail`, `--follow`);
- deprovision: SIGTERM (drain, ZENML_SERVING_SHUTDOWN_GRACE), then SIGKILL past the timeout.

A record a standalone service registered itself (`ZENML_SERVING_DEPLOYMENT_NAME`) has no
process here: refresh probes its url, deprovision explains where to stop it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, cast

from pydantic import BaseModel
from zenml.config.deployment_settings import (
    DEFAULT_DEPLOYMENT_APP_API_URL_PATH,
    DEFAULT_DEPLOYMENT_APP_HEALTH_URL_PATH,
    DEFAULT_DEPLOYMENT_APP_INVOKE_URL_PATH,
    DEFAULT_DEPLOYMENT_APP_ROOT_URL_PATH,
    DEFAULT_DEPLOYMENT_APP_SUBMIT_URL_PATH,
)
from zenml.deployers.base_deployer import BaseDeployer
from zenml.deployers.exceptions import (
    DeployerError,
    DeploymentLogsNotFoundError,
    DeploymentNotFoundError,
    DeploymentProvisionError,
)
from zenml.enums import DeploymentStatus
from zenml.models import DeploymentOperationalState
from zenml.utils import source_utils
from zenml.utils.io_utils import get_global_config_directory
from zenml.utils.networking_utils import lookup_preferred_or_free_port

from zenml_serving.deployment.capture_declarations import (
    ConflictingCaptureError,
    declared_capture,
)
from zenml_serving.integration import process
from zenml_serving.integration.settings import (
    ZenMLServingDeployerConfig,
    ZenMLServingDeployerSettings,
)

if TYPE_CHECKING:
    from collections.abc import Generator
    from uuid import UUID

    from zenml.config.base_settings import BaseSettings
    from zenml.models import DeploymentResponse
    from zenml.stack import Stack

__all__ = ["ZenMLServingDeployer", "ZenMLServingDeploymentMetadata"]

_FOLLOW_POLL_S = 0.2
_DEFAULT_FOLLOW_LINES = 100
# Variables of the provisioning shell that must not reach the service it starts.
_NOT_INHERITED = ("ZENML_SERVING_DEPLOYMENT_NAME", "ZENML_PIPELINE_DEPLOYMENT_ID")


class ZenMLServingDeploymentMetadata(BaseModel):
    """What a deployment record keeps about its process (`deployment_metadata`)."""

    pid: int | None = None
    port: int | None = None
    address: str | None = None
    log_file: str | None = None
    health_url: str | None = None
    self_registered: bool = False
    url: str | None = None

    @classmethod
    def of(cls, deployment: DeploymentResponse) -> ZenMLServingDeploymentMetadata:
        """The metadata of a record (unknown keys ignored)."""
        stored = deployment.deployment_metadata or {}
        return cls.model_validate({k: v for k, v in stored.items() if k in cls.model_fields})


class ZenMLServingDeployer(BaseDeployer):
    """Runs each deployment as a local zenml-serving process."""

    @property
    def settings_class(self) -> type[BaseSettings] | None:
        """`deployer` / `deployer.zenml-serving` settings are validated by this class."""
        return ZenMLServingDeployerSettings

    @property
    def config(self) -> ZenMLServingDeployerConfig:
        """The component's configuration."""
        return cast("ZenMLServingDeployerConfig", self._config)

    def do_provision_deployment(
        self,
        deployment: DeploymentResponse,
        stack: Stack,  # noqa: ARG002 - the service uses the stack named in `environment`
        environment: dict[str, str],
        secrets: dict[str, str],
        timeout: int,
    ) -> DeploymentOperationalState:
        """Start (or restart) the deployment's service and wait until it is healthy."""
        assert deployment.snapshot is not None, "deployment without a snapshot"
        settings = cast("ZenMLServingDeployerSettings", self.get_settings(deployment.snapshot))
        _check_paths(deployment)
        self._check_capture(deployment)
        if deployment.auth_key and len(deployment.auth_key) < 16:
            raise DeploymentProvisionError(
                "zenml-serving needs an auth key of at least 16 characters: set a longer "
                "`auth_key` in the deployer settings, or `generate_auth_key=True`"
            )
        previous = ZenMLServingDeploymentMetadata.of(deployment)
        if previous.pid is not None:
            process.stop_service(previous.pid, timeout_s=float(timeout))
        port = self._port(settings, previous)

        env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
        env.update(settings.service_environment())
        env.update(environment)
        env.update(secrets)
        env.update(
            {
                "ZENML_PIPELINE_DEPLOYMENT_ID": str(deployment.id),
                "ZENML_SERVING_API": "zenml",
                "ZENML_SERVICE_HOST": settings.host,
                "ZENML_SERVICE_PORT": str(port),
                "ZENML_SERVING_SOURCE_ROOT": source_utils.get_source_root(),
            }
        )
        env.pop("ZENML_SERVING_AUTH_KEY", None)
        if deployment.auth_key:
            env["ZENML_SERVING_AUTH_KEY"] = deployment.auth_key

        address = "127.0.0.1" if settings.host in ("0.0.0.0", "") else settings.host  # noqa: S104
        url = f"http://[{address}]:{port}" if ":" in address else f"http://{address}:{port}"
        health_url = f"{url}{DEFAULT_DEPLOYMENT_APP_HEALTH_URL_PATH}"
        log_file = Path(previous.log_file or self._log_file(deployment.id))
        started = process.start_service(env, log_file, cwd=_working_dir(log_file.parent))
        metadata = ZenMLServingDeploymentMetadata(
            pid=started.pid,
            port=port,
            address=address,
            log_file=str(log_file),
            health_url=health_url,
        ).model_dump(exclude_none=True)
        try:
            healthy = process.wait_healthy(
                started, health_url, min(settings.startup_timeout, float(timeout))
            )
        except process.ServiceExitedError as exc:
            raise DeploymentProvisionError(str(exc)) from None
        except BaseException:
            process.stop_service(started.pid, timeout_s=10.0)  # interrupted: leave nothing behind
            raise
        return DeploymentOperationalState(
            status=DeploymentStatus.RUNNING if healthy else DeploymentStatus.PENDING,
            url=url,
            metadata=metadata,
        )

    def do_get_deployment_state(self, deployment: DeploymentResponse) -> DeploymentOperationalState:
        """Running while the process lives (ZenML then probes `/health`); absent without one."""
        meta = ZenMLServingDeploymentMetadata.of(deployment)
        metadata = dict(deployment.deployment_metadata or {})  # kept whole: it is not all ours
        if meta.self_registered and deployment.url:
            healthy = process.probe(f"{deployment.url}{DEFAULT_DEPLOYMENT_APP_HEALTH_URL_PATH}")
            return DeploymentOperationalState(
                status=DeploymentStatus.RUNNING if healthy else DeploymentStatus.ERROR,
                url=deployment.url,
                metadata=metadata,
            )
        if meta.pid is None:
            raise DeploymentNotFoundError(f"deployment '{deployment.name}' has no process")
        if not process.is_running(meta.pid):
            return DeploymentOperationalState(status=DeploymentStatus.ERROR, metadata=metadata)
        return DeploymentOperationalState(
            status=DeploymentStatus.RUNNING, url=deployment.url, metadata=metadata
        )

    def do_get_deployment_state_logs(
        self,
        deployment: DeploymentResponse,
        follow: bool = False,
        tail: int | None = None,
    ) -> Generator[str, bool, None]:
        """The service's log lines (the last `tail`; `follow` keeps reading)."""
        meta = ZenMLServingDeploymentMetadata.of(deployment)
        if meta.log_file is None or not os.path.exists(meta.log_file):
            raise DeploymentLogsNotFoundError(
                f"no log file for deployment '{deployment.name}'"
                + (" (it registered itself: see where it runs)" if meta.self_registered else "")
            )
        return _read_log(Path(meta.log_file), follow=follow, tail=tail)

    def do_deprovision_deployment(
        self, deployment: DeploymentResponse, timeout: int
    ) -> DeploymentOperationalState | None:
        """Drain and stop the process; None: it is gone (ZenML marks the record absent)."""
        meta = ZenMLServingDeploymentMetadata.of(deployment)
        if meta.self_registered:
            raise DeployerError(
                f"deployment '{deployment.name}' registered itself from {meta.url}: stop that "
                "service where it runs (SIGTERM); it marks the record absent when it drains"
            )
        if meta.pid is None:
            raise DeploymentNotFoundError(f"deployment '{deployment.name}' has no process")
        process.stop_service(meta.pid, timeout_s=float(timeout))
        return None

    def _check_capture(self, deployment: DeploymentResponse) -> None:
        """Refuse now what the service would refuse at startup: a component-level capture
        policy (the service reads policies from the snapshot only) and a pipeline or step
        declaring two different ones."""
        if self.config.serving_capture is not None:
            raise DeploymentProvisionError(
                f"the deployer component '{self.name}' sets serving_capture: capture policies "
                "belong to the pipeline: @pipeline(settings={'deployer': {'serving_capture': "
                "...}}) or extra={'serving_capture': ...}"
            )
        snapshot = deployment.snapshot
        assert snapshot is not None
        try:
            configuration = snapshot.pipeline_configuration
            declared_capture(configuration.extra, configuration.settings, "the pipeline")
            for name, step in snapshot.step_configurations.items():
                overrides = step.step_config_overrides
                declared_capture(overrides.extra, overrides.settings, f"step '{name}'")
        except ConflictingCaptureError as exc:
            raise DeploymentProvisionError(str(exc)) from None

    def _port(
        self, settings: ZenMLServingDeployerSettings, previous: ZenMLServingDeploymentMetadata
    ) -> int:
        if settings.port is not None:
            preferred, allocate = [settings.port], False
        else:
            preferred, allocate = ([previous.port] if previous.port else []), True
        try:
            port: int = lookup_preferred_or_free_port(
                preferred_ports=preferred,
                allocate_port_if_busy=allocate,
                range=(8000, 65535),
                address=settings.host,
            )
        except OSError as exc:
            raise DeploymentProvisionError(f"port {settings.port}: {exc}") from None
        return port

    def _log_file(self, deployment_id: UUID) -> str:
        return os.path.join(
            get_global_config_directory(), "deployments", str(deployment_id), "zenml-serving.log"
        )


def _working_dir(fallback: Path) -> Path:
    """The service's working folder: the source root (so that step code reading relative
    paths behaves as in a run), unless that folder is itself a Python package, where
    granian would import `<package>.zenml_serving.app`; then `fallback`. Step code is
    imported from ZENML_SERVING_SOURCE_ROOT either way."""
    root = Path(source_utils.get_source_root())
    return fallback if (root / "__init__.py").exists() else root


def _check_paths(deployment: DeploymentResponse) -> None:
    """zenml-serving's routes are fixed: refuse a snapshot whose `deployment` settings move
    them, rather than answer ZenML's client with 404s."""
    assert deployment.snapshot is not None
    settings = deployment.snapshot.pipeline_configuration.deployment_settings
    expected = {
        "root_url_path": DEFAULT_DEPLOYMENT_APP_ROOT_URL_PATH,
        "api_url_path": DEFAULT_DEPLOYMENT_APP_API_URL_PATH,
        "invoke_url_path": DEFAULT_DEPLOYMENT_APP_INVOKE_URL_PATH,
        "submit_url_path": DEFAULT_DEPLOYMENT_APP_SUBMIT_URL_PATH,
        "health_url_path": DEFAULT_DEPLOYMENT_APP_HEALTH_URL_PATH,
    }
    moved = [
        f"{k}={getattr(settings, k)!r}" for k, v in expected.items() if getattr(settings, k) != v
    ]
    if moved:
        raise DeploymentProvisionError(
            "zenml-serving serves fixed paths (/invoke, /submit, /health): remove "
            + ", ".join(moved)
            + " from the pipeline's `deployment` settings"
        )


def _read_log(path: Path, *, follow: bool, tail: int | None) -> Generator[str, bool, None]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        lines = handle.readlines()
        if tail is None and follow:
            tail = _DEFAULT_FOLLOW_LINES
        for line in lines[-tail:] if tail else lines:
            yield line.rstrip("\n")
        while follow:
            line = handle.readline()
            if not line:
                time.sleep(_FOLLOW_POLL_S)
                continue
            yield line.rstrip("\n")
