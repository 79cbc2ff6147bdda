"""ServingConfig: every environment variable the service reads, parsed and validated once.

A bad value stops startup with a `ConfigError` whose message names the variable, the value
and what is allowed. Nothing else in the package reads `os.environ` for its own settings.
"""

from __future__ import annotations

import dataclasses
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "API_STYLES",
    "CAPTURE_MODES",
    "JOB_BACKENDS",
    "ConfigError",
    "ServingConfig",
    "redact_url",
]

CAPTURE_MODES = ("full", "sampled", "errors_only", "metadata", "none")
API_STYLES = ("native", "zenml")
_LOG_FORMATS = ("auto", "json", "console")
_TRACES_EXPORTERS = ("none", "otlp", "console")
_OTLP_PROTOCOLS = ("http/protobuf", "grpc")
_SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
JOB_BACKENDS = ("auto", "memory", "sqlite", "redis")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message says which and what to do."""

    def __init__(self, variable: str, value: str | None, allowed: str) -> None:
        shown = "<unset>" if value is None else repr(value)
        super().__init__(f"{variable}={shown} is invalid: {allowed}")
        self.variable = variable


def _default_concurrency() -> int:
    return (os.cpu_count() or 1) * 5


@dataclass(frozen=True)
class ServingConfig:
    """The effective configuration of one serving process."""

    deployment_id: uuid.UUID | None = None
    """ZENML_PIPELINE_DEPLOYMENT_ID: the snapshot (or ZenML deployment) to serve."""
    host: str = "0.0.0.0"  # noqa: S104 - a service binds all interfaces unless told otherwise
    """ZENML_SERVICE_HOST: address granian binds."""
    port: int = 8001
    """ZENML_SERVICE_PORT: port granian binds."""
    workers: int = 1
    """ZENML_SERVING_WORKERS: granian worker processes."""
    log_level: str = "INFO"
    """ZENML_LOG_LEVEL: minimum level of the service's own log events."""
    source_root: Path = field(default_factory=Path.cwd)
    """ZENML_SERVING_SOURCE_ROOT: folder from which the pipeline's step code is imported."""
    max_concurrency: int = field(default_factory=_default_concurrency)
    """ZENML_SERVING_MAX_CONCURRENCY: executions running at once (default: the pipeline's
    ResourceSettings.max_concurrency, else CPU count x 5)."""
    max_concurrency_set: bool = False
    """Whether ZENML_SERVING_MAX_CONCURRENCY was set (it then wins over the pipeline's)."""
    step_concurrency: int = 4
    """ZENML_SERVING_STEP_CONCURRENCY: steps of one invocation running at once at most, on
    independent branches (default: the pipeline's `extra["serving_step_concurrency"]`, else
    4; 1 runs them one after another)."""
    step_concurrency_set: bool = False
    """Whether ZENML_SERVING_STEP_CONCURRENCY was set (it then wins over the pipeline's)."""
    reload_interval_s: float = 0.0
    """ZENML_SERVING_RELOAD_INTERVAL: seconds between automatic reloads (0: off)."""
    max_queue_size: int = 100
    """ZENML_SERVING_MAX_QUEUE_SIZE: executions waiting for a slot before 429 is answered."""
    request_timeout_s: float = 300.0
    """ZENML_SERVING_REQUEST_TIMEOUT: seconds per invocation, queue wait included."""
    shutdown_grace_s: float = 30.0
    """ZENML_SERVING_SHUTDOWN_GRACE: seconds in-flight executions get to finish on shutdown."""
    job_ttl_s: float = 3600.0
    """ZENML_SERVING_JOB_TTL: seconds a finished async job and its events are kept."""
    max_jobs: int = 10_000
    """ZENML_SERVING_MAX_JOBS: job records kept at most; the oldest finished ones go first."""
    max_job_bytes: int = 128 * 1024 * 1024
    """ZENML_SERVING_MAX_JOB_BYTES: bytes (as JSON) of the job records and events kept at most;
    the oldest finished ones go first, a new async job is refused (429) when only unfinished
    ones are left, and a job whose outputs alone exceed it ends `failed` (OutputsTooLarge)."""
    max_events_per_job: int = 1_000
    """ZENML_SERVING_MAX_EVENTS_PER_JOB: stream events kept per job for replay."""
    job_backend: str = "auto"
    """ZENML_SERVING_JOB_BACKEND: where async jobs live. `auto`: Redis when
    ZENML_SERVING_REDIS_URL is set, else SQLite in ZENML_SERVING_RUNTIME_DIR when
    ZENML_SERVING_WORKERS > 1, else memory. `memory` with several workers keeps jobs per
    worker (a poll that reaches another worker answers 404): only when asked for explicitly."""
    runtime_dir: Path | None = None
    """ZENML_SERVING_RUNTIME_DIR: local folder of the SQLite job store shared by the workers
    of one host (default: `zenml-serving-<uid>` in the temporary folder, private to the user)."""
    redis_url: str | None = None
    """ZENML_SERVING_REDIS_URL: keep jobs and events in Redis (redis://, rediss://, unix://) so
    that every worker and replica answers for every job; unset: in memory, this process only."""
    redis_prefix: str = "zenml-serving"
    """ZENML_SERVING_REDIS_PREFIX: first part of every Redis key and channel (the snapshot ID
    follows, so deployments sharing a Redis never see each other's jobs)."""
    redis_timeout_s: float = 2.0
    """ZENML_SERVING_REDIS_TIMEOUT: seconds to connect to Redis or wait for one reply."""
    sse_heartbeat_s: float = 15.0
    """ZENML_SERVING_SSE_HEARTBEAT: seconds between heartbeats on an idle stream."""
    create_runs: bool = True
    """ZENML_SERVING_CREATE_RUNS: false turns off every ZenML run record."""
    capture_default: str = "full"
    """ZENML_SERVING_CAPTURE_DEFAULT: capture mode when nothing else decides."""
    capture_sample_rate: float = 0.1
    """ZENML_SERVING_CAPTURE_SAMPLE_RATE: fraction of invocations `sampled` records fully."""
    capture_max_bytes: int = 262_144
    """ZENML_SERVING_CAPTURE_MAX_BYTES: largest preview recorded before truncation."""
    capture_redact: tuple[str, ...] = ()
    """ZENML_SERVING_CAPTURE_REDACT: extra field names to redact (comma-separated)."""
    capture_override: str = "allow"
    """ZENML_SERVING_CAPTURE_OVERRIDE: `allow` or `deny` request capture overrides."""
    tracking_queue_size: int = 1000
    """ZENML_SERVING_TRACKING_QUEUE_SIZE: run records waiting for the store before drops."""
    tracking_writer: str = "process"
    """ZENML_SERVING_TRACKING_WRITER: `process` writes runs from a child process, in batches
    (one SQL transaction per batch on SQL stores); `thread` writes them one by one from a
    thread of the serving process, rationed by ZENML_SERVING_TRACKING_DUTY."""
    tracking_duty: float = 0.2
    """ZENML_SERVING_TRACKING_DUTY: with the `thread` writer, largest share of time (0..1]
    it may spend writing; it competes with requests for the GIL (1: no limit)."""
    log_format: str = "auto"
    """ZENML_SERVING_LOG_FORMAT: `json`, `console`, or `auto` (console on a terminal)."""
    access_log: bool = False
    """ZENML_SERVING_ACCESS_LOG: one structured log line per HTTP request (off by default: it
    costs about a third of the throughput of a fast pipeline; metrics and traces cover
    requests, and failures are always logged)."""
    auth_key: str | None = field(default=None, repr=False)
    """ZENML_SERVING_AUTH_KEY: when set, every route but the health probes, the playground's
    static files and (if ZENML_SERVING_METRICS_AUTH is false) `/metrics` needs
    `Authorization: Bearer <key>` (at least 16 characters, no spaces)."""
    metrics_auth: bool = True
    """ZENML_SERVING_METRICS_AUTH: with an auth key set, `/metrics` needs it too (it names the
    pipeline and its steps); false leaves it open for scrapers that cannot send the key."""
    cors_origins: tuple[str, ...] = ()
    """ZENML_SERVING_CORS_ORIGINS: comma-separated origins browsers may call from (CORS off
    when empty; `*` only without an auth key)."""
    max_request_bytes: int = 4 * 1024 * 1024
    """ZENML_SERVING_MAX_REQUEST_SIZE: largest request body (and WebSocket message), bytes."""
    max_parameter_depth: int = 32
    """ZENML_SERVING_MAX_PARAMETER_DEPTH: deepest nesting of objects/arrays in `parameters`."""
    max_parameter_items: int = 10_000
    """ZENML_SERVING_MAX_PARAMETER_ITEMS: most values (all levels) in `parameters`."""
    max_streams: int = 500
    """ZENML_SERVING_MAX_STREAMS: event streams (SSE and WebSockets) open at once in this
    process; one more is answered 503 with Retry-After."""
    max_streams_per_client: int = 100
    """ZENML_SERVING_MAX_STREAMS_PER_CLIENT: event streams one client address may hold open
    in this process (at most ZENML_SERVING_MAX_STREAMS); one more is answered 429."""
    ws_check_origin: bool = True
    """ZENML_SERVING_WS_CHECK_ORIGIN: refuse a WebSocket whose `Origin` is neither this
    service's own nor one of ZENML_SERVING_CORS_ORIGINS (false: accept any `Origin`)."""
    body_timeout_s: float = 30.0
    """ZENML_SERVING_BODY_TIMEOUT: seconds a client may take to send a request body (408)."""
    health_max_loop_lag_s: float = 2.0
    """ZENML_SERVING_HEALTH_MAX_LOOP_LAG: event-loop lag (seconds) past which `/livez` and
    `/health` answer 503."""
    metrics_enabled: bool = True
    """ZENML_SERVING_METRICS: serve Prometheus `/metrics` and count requests."""
    metrics_interval_s: float = 1.0
    """ZENML_SERVING_METRICS_INTERVAL: seconds between samples of the state gauges."""
    prometheus_multiproc_dir: Path | None = None
    """PROMETHEUS_MULTIPROC_DIR: shared folder for the metrics of several worker processes
    (`zenml-serving serve` creates and empties it; with several workers and none set, it uses
    a fresh temporary folder)."""
    otel_sdk_disabled: bool = False
    """OTEL_SDK_DISABLED: true turns tracing off (no spans, no trace ids)."""
    otel_service_name: str = "zenml-serving"
    """OTEL_SERVICE_NAME: `service.name` of every span."""
    otel_traces_exporter: str = "none"
    """OTEL_TRACES_EXPORTER: `otlp`, `console` or `none` (default `otlp` when an OTLP
    endpoint is set, else `none`: no exporter, no network calls)."""
    otel_exporter_otlp_endpoint: str | None = None
    """OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT (read by the exporter)."""
    otel_exporter_otlp_protocol: str = "http/protobuf"
    """OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL."""
    otel_traces_sampler: str = "parentbased_always_on"
    """OTEL_TRACES_SAMPLER: one of the SDK's built-in samplers."""
    otel_traces_sampler_arg: float = 1.0
    """OTEL_TRACES_SAMPLER_ARG: the ratio of the `*traceidratio` samplers."""
    otel_bsp_max_export_batch_size: int = 64
    """OTEL_BSP_MAX_EXPORT_BATCH_SIZE: spans per export. Smaller than the SDK's 512: encoding
    a batch holds the GIL, and a big one stalls the requests running meanwhile."""
    otel_bsp_schedule_delay_ms: int = 500
    """OTEL_BSP_SCHEDULE_DELAY: milliseconds between exports (the SDK's default is 5000)."""
    api_style: str = "native"
    """ZENML_SERVING_API: `native` (strict types, problem+json errors, `?mode=`) or `zenml`
    (`POST /invoke` and `POST /submit` answer ZenML's client as ZenML's own deployment server
    does: string values coerced to the parameter types, a failing step is 200
    `success: false`). The `zenml-serving` deployer flavor sets `zenml`."""
    deployment_name: str | None = None
    """ZENML_SERVING_DEPLOYMENT_NAME: register this service as the ZenML deployment of that
    name when ready (url, status `running`, auth key) and mark it absent when draining, so
    that `zenml deployment invoke NAME` reaches it. Unset: no store writes."""
    public_url: str | None = None
    """ZENML_SERVING_PUBLIC_URL: the URL written in the deployment record (default
    `http://<host>:<port>`, 127.0.0.1 for a wildcard host); set it behind a Service or
    load balancer."""
    deployer: str | None = None
    """ZENML_SERVING_DEPLOYER: name or ID of the deployer component a self-registered record
    names (ZenML requires one); default: the `zenml-serving` component, created with its
    flavor if missing."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServingConfig:
        """Read and validate every variable; raise ConfigError naming the first bad one."""
        env = os.environ if environ is None else environ
        defaults = cls()
        # OTLP: the signal-specific variable wins over the general one, as in the SDK.
        endpoint = _get(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", None, str, "a URL") or _get(
            env, "OTEL_EXPORTER_OTLP_ENDPOINT", None, str, "a URL"
        )
        protocol_variable = (
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
            if env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "").strip()
            else "OTEL_EXPORTER_OTLP_PROTOCOL"
        )
        config = cls(
            deployment_id=_get(env, "ZENML_PIPELINE_DEPLOYMENT_ID", None, _uuid, "a UUID"),
            host=env.get("ZENML_SERVICE_HOST", defaults.host) or defaults.host,
            port=_get(env, "ZENML_SERVICE_PORT", defaults.port, _int_in(1, 65535), "1..65535"),
            workers=_get(env, "ZENML_SERVING_WORKERS", 1, _int_in(1, 256), "1..256"),
            log_level=_get(
                env, "ZENML_LOG_LEVEL", "INFO", _choice(_LOG_LEVELS), " | ".join(_LOG_LEVELS)
            ),
            source_root=_get(
                env, "ZENML_SERVING_SOURCE_ROOT", Path.cwd(), _directory, "an existing folder"
            ),
            max_concurrency=_get(
                env,
                "ZENML_SERVING_MAX_CONCURRENCY",
                defaults.max_concurrency,
                _int_in(1, 10_000),
                "an integer 1..10000",
            ),
            max_concurrency_set=bool(env.get("ZENML_SERVING_MAX_CONCURRENCY", "").strip()),
            step_concurrency=_get(
                env,
                "ZENML_SERVING_STEP_CONCURRENCY",
                defaults.step_concurrency,
                _int_in(1, 256),
                "an integer 1..256 (1: steps one after another)",
            ),
            step_concurrency_set=bool(env.get("ZENML_SERVING_STEP_CONCURRENCY", "").strip()),
            reload_interval_s=_get(
                env,
                "ZENML_SERVING_RELOAD_INTERVAL",
                0.0,
                _non_negative_float,
                "seconds >= 0 (0 turns the automatic reload off)",
            ),
            max_queue_size=_get(
                env, "ZENML_SERVING_MAX_QUEUE_SIZE", 100, _int_in(0, 1_000_000), "0..1000000"
            ),
            request_timeout_s=_get(
                env, "ZENML_SERVING_REQUEST_TIMEOUT", 300.0, _positive_float, "seconds > 0"
            ),
            shutdown_grace_s=_get(
                env, "ZENML_SERVING_SHUTDOWN_GRACE", 30.0, _non_negative_float, "seconds >= 0"
            ),
            job_ttl_s=_get(env, "ZENML_SERVING_JOB_TTL", 3600.0, _positive_float, "seconds > 0"),
            max_jobs=_get(env, "ZENML_SERVING_MAX_JOBS", 10_000, _int_in(1, 10_000_000), ">= 1"),
            max_events_per_job=_get(
                env, "ZENML_SERVING_MAX_EVENTS_PER_JOB", 1_000, _int_in(10, 1_000_000), ">= 10"
            ),
            max_job_bytes=_get(
                env,
                "ZENML_SERVING_MAX_JOB_BYTES",
                defaults.max_job_bytes,
                _int_in(1 << 16, 1 << 40),
                "bytes, 65536..1099511627776",
            ),
            job_backend=_get(
                env,
                "ZENML_SERVING_JOB_BACKEND",
                "auto",
                _choice(JOB_BACKENDS, lower=True),
                " | ".join(JOB_BACKENDS),
            ),
            runtime_dir=_get(env, "ZENML_SERVING_RUNTIME_DIR", None, _path, "a folder path"),
            redis_url=_get(
                env,
                "ZENML_SERVING_REDIS_URL",
                None,
                _redis_url,
                "a redis://, rediss:// or unix:// URL, e.g. redis://redis:6379/0",
                shown=redact_url,
            ),
            redis_prefix=_get(
                env,
                "ZENML_SERVING_REDIS_PREFIX",
                "zenml-serving",
                _key_prefix,
                "1-64 letters, digits or . _ - : (no spaces or braces)",
            ),
            redis_timeout_s=_get(
                env, "ZENML_SERVING_REDIS_TIMEOUT", 2.0, _positive_float, "seconds > 0"
            ),
            sse_heartbeat_s=_get(
                env, "ZENML_SERVING_SSE_HEARTBEAT", 15.0, _positive_float, "seconds > 0"
            ),
            create_runs=_get(env, "ZENML_SERVING_CREATE_RUNS", True, _bool, "true | false"),
            capture_default=_get(
                env,
                "ZENML_SERVING_CAPTURE_DEFAULT",
                "full",
                _choice(CAPTURE_MODES, lower=True),
                " | ".join(CAPTURE_MODES),
            ),
            capture_sample_rate=_get(
                env, "ZENML_SERVING_CAPTURE_SAMPLE_RATE", 0.1, _unit_float, "a number in 0..1"
            ),
            capture_max_bytes=_get(
                env, "ZENML_SERVING_CAPTURE_MAX_BYTES", 262_144, _int_in(64, 1 << 30), ">= 64"
            ),
            capture_redact=_get(
                env, "ZENML_SERVING_CAPTURE_REDACT", (), _csv, "comma-separated field names"
            ),
            capture_override=_get(
                env,
                "ZENML_SERVING_CAPTURE_OVERRIDE",
                "allow",
                _choice(("allow", "deny"), lower=True),
                "allow | deny",
            ),
            tracking_queue_size=_get(
                env,
                "ZENML_SERVING_TRACKING_QUEUE_SIZE",
                1000,
                _int_in(1, 1_000_000),
                "an integer 1..1000000",
            ),
            tracking_writer=_get(
                env,
                "ZENML_SERVING_TRACKING_WRITER",
                "process",
                _choice(("process", "thread"), lower=True),
                "process | thread",
            ),
            tracking_duty=_get(
                env,
                "ZENML_SERVING_TRACKING_DUTY",
                0.2,
                _duty,
                "a fraction in (0, 1], e.g. 0.2",
            ),
            log_format=_get(
                env,
                "ZENML_SERVING_LOG_FORMAT",
                "auto",
                _choice(_LOG_FORMATS, lower=True),
                " | ".join(_LOG_FORMATS),
            ),
            access_log=_get(env, "ZENML_SERVING_ACCESS_LOG", False, _bool, "true | false"),
            metrics_enabled=_get(env, "ZENML_SERVING_METRICS", True, _bool, "true | false"),
            metrics_interval_s=_get(
                env, "ZENML_SERVING_METRICS_INTERVAL", 1.0, _positive_float, "seconds > 0"
            ),
            prometheus_multiproc_dir=_get(
                env, "PROMETHEUS_MULTIPROC_DIR", None, _path, "a folder path"
            ),
            otel_sdk_disabled=_get(env, "OTEL_SDK_DISABLED", False, _bool, "true | false"),
            otel_service_name=_get(env, "OTEL_SERVICE_NAME", "zenml-serving", str, "a name"),
            otel_traces_exporter=_get(
                env,
                "OTEL_TRACES_EXPORTER",
                "none" if endpoint is None else "otlp",
                _choice(_TRACES_EXPORTERS, lower=True),
                " | ".join(_TRACES_EXPORTERS),
            ),
            otel_exporter_otlp_endpoint=endpoint,
            otel_exporter_otlp_protocol=_get(
                env,
                protocol_variable,
                "http/protobuf",
                _choice(_OTLP_PROTOCOLS, lower=True),
                " | ".join(_OTLP_PROTOCOLS),
            ),
            otel_traces_sampler=_get(
                env,
                "OTEL_TRACES_SAMPLER",
                "parentbased_always_on",
                _choice(_SAMPLERS, lower=True),
                " | ".join(_SAMPLERS),
            ),
            otel_traces_sampler_arg=_get(
                env, "OTEL_TRACES_SAMPLER_ARG", 1.0, _unit_float, "a number in 0..1"
            ),
            otel_bsp_max_export_batch_size=_get(
                env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 64, _int_in(1, 2048), "1..2048"
            ),
            otel_bsp_schedule_delay_ms=_get(
                env, "OTEL_BSP_SCHEDULE_DELAY", 500, _int_in(1, 600_000), "1..600000 (ms)"
            ),
            api_style=_get(
                env,
                "ZENML_SERVING_API",
                "native",
                _choice(API_STYLES, lower=True),
                " | ".join(API_STYLES),
            ),
            deployment_name=_get(
                env,
                "ZENML_SERVING_DEPLOYMENT_NAME",
                None,
                _deployment_name,
                "a deployment name: 1-255 characters, no spaces at either end",
            ),
            public_url=_get(
                env,
                "ZENML_SERVING_PUBLIC_URL",
                None,
                _http_url,
                "an http:// or https:// URL without query, e.g. http://churn.ml.svc:8001",
            ),
            deployer=_get(env, "ZENML_SERVING_DEPLOYER", None, str, "a deployer name or ID"),
            auth_key=_get(
                env,
                "ZENML_SERVING_AUTH_KEY",
                None,
                _auth_key,
                "at least 16 characters without spaces (e.g. `openssl rand -hex 32`)",
                secret=True,
            ),
            metrics_auth=_get(env, "ZENML_SERVING_METRICS_AUTH", True, _bool, "true | false"),
            cors_origins=_get(
                env,
                "ZENML_SERVING_CORS_ORIGINS",
                (),
                _origins,
                "comma-separated origins like https://app.example.com, or *",
            ),
            max_request_bytes=_get(
                env,
                "ZENML_SERVING_MAX_REQUEST_SIZE",
                defaults.max_request_bytes,
                _int_in(1024, 1 << 30),
                "bytes, 1024..1073741824",
            ),
            max_parameter_depth=_get(
                env, "ZENML_SERVING_MAX_PARAMETER_DEPTH", 32, _int_in(1, 256), "1..256"
            ),
            max_parameter_items=_get(
                env,
                "ZENML_SERVING_MAX_PARAMETER_ITEMS",
                10_000,
                _int_in(1, 10_000_000),
                "1..10000000",
            ),
            max_streams=_get(
                env, "ZENML_SERVING_MAX_STREAMS", 500, _int_in(1, 100_000), "1..100000"
            ),
            max_streams_per_client=_get(
                env,
                "ZENML_SERVING_MAX_STREAMS_PER_CLIENT",
                100,
                _int_in(1, 100_000),
                "1..100000",
            ),
            ws_check_origin=_get(env, "ZENML_SERVING_WS_CHECK_ORIGIN", True, _bool, "true | false"),
            body_timeout_s=_get(
                env, "ZENML_SERVING_BODY_TIMEOUT", 30.0, _positive_float, "seconds > 0"
            ),
            health_max_loop_lag_s=_get(
                env, "ZENML_SERVING_HEALTH_MAX_LOOP_LAG", 2.0, _positive_float, "seconds > 0"
            ),
        )
        if config.job_backend == "redis" and config.redis_url is None:
            raise ConfigError(
                "ZENML_SERVING_JOB_BACKEND",
                env.get("ZENML_SERVING_JOB_BACKEND"),
                "`redis` needs ZENML_SERVING_REDIS_URL",
            )
        if "*" in config.cors_origins and config.auth_key is not None:
            raise ConfigError(
                "ZENML_SERVING_CORS_ORIGINS",
                env.get("ZENML_SERVING_CORS_ORIGINS"),
                "`*` lets every website call an authenticated API: list the origins explicitly",
            )
        if config.max_streams_per_client > config.max_streams:
            raise ConfigError(
                "ZENML_SERVING_MAX_STREAMS_PER_CLIENT",
                str(config.max_streams_per_client),
                f"at most ZENML_SERVING_MAX_STREAMS ({config.max_streams})",
            )
        return config

    @property
    def effective_job_backend(self) -> str:
        """`memory`, `sqlite` or `redis`: what ZENML_SERVING_JOB_BACKEND=auto resolves to."""
        if self.job_backend != "auto":
            return self.job_backend
        if self.redis_url is not None:
            return "redis"
        return "sqlite" if self.workers > 1 else "memory"

    def public_view(self) -> dict[str, object]:
        """The configuration as shown by /status: every field, nothing secret."""
        view: dict[str, object] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (uuid.UUID, Path)):
                value = str(value)
            elif f.name == "auth_key":
                value = None if value is None else "***"
            elif f.name in ("redis_url", "otel_exporter_otlp_endpoint") and value is not None:
                value = redact_url(value)
            elif isinstance(value, tuple):
                value = list(value)
            view[f.name] = value
        return view


def _get(
    env: Mapping[str, str],
    name: str,
    default: T,
    parse: Callable[[str], T],
    allowed: str,
    *,
    secret: bool = False,
    shown: Callable[[str], str] | None = None,
) -> T:
    """`parse` the variable's value; a bad one is a ConfigError that shows the value, unless
    `secret` (hidden) or through `shown` (e.g. a URL with its password masked)."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return parse(raw.strip())
    except ValueError:
        value = "<hidden>" if secret else shown(raw) if shown is not None else raw
        raise ConfigError(name, value, f"expected {allowed}") from None


def _uuid(raw: str) -> uuid.UUID:
    return uuid.UUID(raw)


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(raw)
        return value

    return parse


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0 or value == float("inf"):
        raise ValueError(raw)
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0 or value == float("inf"):
        raise ValueError(raw)
    return value


def _unit_float(raw: str) -> float:
    value = float(raw)
    if not 0.0 <= value <= 1.0:
        raise ValueError(raw)
    return value


def _duty(raw: str) -> float:
    value = float(raw)
    if not 0.0 < value <= 1.0:
        raise ValueError(raw)
    return value


def _bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(raw)


def _choice(options: tuple[str, ...], *, lower: bool = False) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.lower() if lower else raw.upper()
        if value not in options:
            raise ValueError(raw)
        return value

    return parse


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip().lower() for part in raw.split(",") if part.strip())


def _deployment_name(raw: str) -> str:
    if len(raw) > 255:
        raise ValueError(raw)
    return raw


def _http_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ValueError(raw)
    return raw.rstrip("/")


def _auth_key(raw: str) -> str:
    if len(raw) < 16 or any(c.isspace() for c in raw):
        raise ValueError("bad key")  # never the key itself: the message may be logged
    return raw


def _origins(raw: str) -> tuple[str, ...]:
    origins = tuple(part.strip().rstrip("/") for part in raw.split(",") if part.strip())
    for origin in origins:
        if origin == "*":
            continue
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
            raise ValueError(origin)
    return origins


_REDIS_SCHEMES = ("redis", "rediss", "unix")
_PREFIX_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:")


def _redis_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in _REDIS_SCHEMES:
        raise ValueError(raw)
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError(raw)
    elif not parts.hostname:
        raise ValueError(raw)
    _ = parts.port  # raises ValueError on a port that is not a number in range
    return raw


def _key_prefix(raw: str) -> str:
    if not 1 <= len(raw) <= 64 or not set(raw) <= _PREFIX_CHARS:
        raise ValueError(raw)
    return raw


_USERINFO_PASSWORD = re.compile(r"(?<=://)([^/@:]*):[^/]*@")


def redact_url(url: str) -> str:
    """`url` with its password (if any) replaced by `***`, for logs, errors and /status
    (also when the URL is malformed: a bad port must not show the password next to it)."""
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        masked = _USERINFO_PASSWORD.sub(r"\1:***@", url)
        return re.sub(r"password=[^&]*", "password=***", masked)
    if parts.password is None and "password=" not in parts.query:
        return url  # nothing to hide: shown exactly as given
    if parts.password is not None:
        user = parts.username or ""
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port is not None else ""
        parts = parts._replace(netloc=f"{user}:***@{host}{port}")
    if "password=" in parts.query:
        query = "&".join(
            "password=***" if item.startswith("password=") else item
            for item in parts.query.split("&")
        )
        parts = parts._replace(query=query)
    return urlunsplit(parts)


def _path(raw: str) -> Path:
    return Path(raw).expanduser().resolve()


def _directory(raw: str) -> Path:
    path = _path(raw)
    if not path.is_dir():
        raise ValueError(raw)
    return path
