"""The `zenml-serving` deployer's settings: the service's knobs, mapped onto its variables.

Set on the component (`zenml deployer register NAME --flavor=zenml-serving --port=8080`) or
per pipeline (`@pipeline(settings={"deployer": {"workers": 2}})`, or the key
`deployer.zenml-serving`); ZenML merges the two, the pipeline's winning. Each field left
unset leaves the service's own default (README, *Configuration*). The service validates
every value again at startup, so a bad one fails the provisioning with the variable's name
(`zenml deployment logs NAME` shows it).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from zenml.deployers.base_deployer import BaseDeployerConfig, BaseDeployerSettings

__all__ = ["ENVIRONMENT_OF", "ZenMLServingDeployerConfig", "ZenMLServingDeployerSettings"]

CaptureMode = Literal["full", "sampled", "errors_only", "metadata", "none"]

ENVIRONMENT_OF: dict[str, str] = {
    "workers": "ZENML_SERVING_WORKERS",
    "max_concurrency": "ZENML_SERVING_MAX_CONCURRENCY",
    "max_queue_size": "ZENML_SERVING_MAX_QUEUE_SIZE",
    "request_timeout": "ZENML_SERVING_REQUEST_TIMEOUT",
    "shutdown_grace": "ZENML_SERVING_SHUTDOWN_GRACE",
    "job_ttl": "ZENML_SERVING_JOB_TTL",
    "create_runs": "ZENML_SERVING_CREATE_RUNS",
    "capture_default": "ZENML_SERVING_CAPTURE_DEFAULT",
    "capture_sample_rate": "ZENML_SERVING_CAPTURE_SAMPLE_RATE",
    "capture_override": "ZENML_SERVING_CAPTURE_OVERRIDE",
    "redis_url": "ZENML_SERVING_REDIS_URL",
    "log_level": "ZENML_LOG_LEVEL",
    "log_format": "ZENML_SERVING_LOG_FORMAT",
    "access_log": "ZENML_SERVING_ACCESS_LOG",
    "metrics": "ZENML_SERVING_METRICS",
    "cors_origins": "ZENML_SERVING_CORS_ORIGINS",
}
"""Settings field -> the environment variable of the service it sets."""


class ZenMLServingDeployerSettings(BaseDeployerSettings):
    """How the `zenml-serving` deployer starts the service (unset: the service's default).

    Besides these, ZenML's own deployer settings apply: `auth_key`, `generate_auth_key`
    (the key the service requires and ZenML's client sends) and `lcm_timeout`.
    """

    host: str = "127.0.0.1"
    """Address the service binds (ZENML_SERVICE_HOST); `0.0.0.0` for every interface."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """Port (ZENML_SERVICE_PORT); unset: the deployment's previous port if free, else a free one."""
    workers: int | None = Field(default=None, ge=1, le=256)
    max_concurrency: int | None = Field(default=None, ge=1)
    max_queue_size: int | None = Field(default=None, ge=0)
    request_timeout: float | None = Field(default=None, gt=0)
    """Seconds per invocation, queue wait included."""
    shutdown_grace: float | None = Field(default=None, ge=0)
    """Seconds in-flight work gets when the deployment is deprovisioned."""
    job_ttl: float | None = Field(default=None, gt=0)
    create_runs: bool | None = None
    capture_default: CaptureMode | None = None
    capture_sample_rate: float | None = Field(default=None, ge=0, le=1)
    capture_override: Literal["allow", "deny"] | None = None
    redis_url: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] | None = None
    log_format: Literal["auto", "json", "console"] | None = None
    access_log: bool | None = None
    metrics: bool | None = None
    cors_origins: list[str] | None = None
    environment: dict[str, str] = Field(default_factory=dict)
    """Any other variable of the service (README, *Configuration*), e.g.
    `{"ZENML_SERVING_MAX_JOBS": "500"}`; the fields above win."""
    startup_timeout: float = Field(default=120.0, gt=0)
    """Seconds to wait for `/health` before the provisioning is reported pending."""
    serving_capture: dict[str, Any] | None = None
    """The pipeline's capture policy (the same keys as `extra={"serving_capture": ...}`),
    for `@pipeline(settings={"deployer.zenml-serving": {"serving_capture": {...}}})`."""

    def service_environment(self) -> dict[str, str]:
        """The service's environment variables these settings give."""
        env = dict(self.environment)
        for name, variable in ENVIRONMENT_OF.items():
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool):
                env[variable] = "true" if value else "false"
            elif isinstance(value, list):
                env[variable] = ",".join(value)
            else:
                env[variable] = str(value)
        return env


class ZenMLServingDeployerConfig(BaseDeployerConfig, ZenMLServingDeployerSettings):
    """The component's configuration: the settings' defaults for every deployment."""

    @property
    def is_local(self) -> bool:
        """The service runs on this machine."""
        return True
