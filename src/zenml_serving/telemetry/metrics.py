"""Every Prometheus metric the service exports: the one module that owns the metric objects.

Several granian workers: set PROMETHEUS_MULTIPROC_DIR (`zenml-serving serve` does it, and
empties the folder, before the workers start: see `multiproc.py`); each worker writes its
samples there, `/metrics` in any worker merges them, and a worker that stops marks itself
dead so that its `live*` gauges stop counting. Gauges say how they merge
(`multiprocess_mode`): per-worker quantities add up (`livesum`), the build info takes the max.

Names follow Prometheus conventions: `_total` counters, `_seconds` histograms, base units.
"""

from __future__ import annotations

import functools
import os
import struct
import time
from typing import TYPE_CHECKING, Any, Final

import structlog
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.exposition import choose_encoder

from zenml_serving.execution.outcomes import ADMISSION_REFUSALS, counted_as

if TYPE_CHECKING:
    from prometheus_client.metrics import MetricWrapperBase

    from zenml_serving.execution.manager import ServingExecutionManager
    from zenml_serving.tracking.writer import TrackingWriter

__all__ = [
    "ALL_METRICS",
    "BUILD_INFO",
    "CONCURRENCY_LIMIT",
    "EXECUTIONS_IN_FLIGHT",
    "EXECUTIONS_ORPHANED",
    "HTTP_REQUESTS",
    "HTTP_REQUEST_DURATION",
    "INVOCATIONS",
    "INVOCATION_DURATION",
    "INVOCATION_OUTCOMES",
    "JOBS",
    "JOB_STATES",
    "OPEN_STREAMS",
    "QUEUE_CAPACITY",
    "QUEUE_DEPTH",
    "QUEUE_WAIT",
    "REGISTRY",
    "REJECTIONS",
    "RELOADS",
    "SERVED_VERSION",
    "STEP_DURATION",
    "STEP_FAILURES",
    "TRACKING_DROPPED",
    "TRACKING_QUEUE_DEPTH",
    "child",
    "count_outcome",
    "count_tracking_drops",
    "exported_series_names",
    "mark_process_dead",
    "multiprocess_dir",
    "observe_step",
    "render",
    "sample_state",
]

PREFIX: Final = "zenml_serving_"
_log = structlog.stdlib.get_logger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)
"""The service's own registry (single-process mode); never the global default one."""

_LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
)

INVOCATION_OUTCOMES: Final = ("completed", "failed", "cancelled", "timed_out", "rejected")
INVOCATION_MODES: Final = ("sync", "async", "stream")
REJECTION_REASONS: Final = ADMISSION_REFUSALS
JOB_STATES: Final = ("queued", "running", "completed", "failed", "cancelled", "timed_out")
STREAM_KINDS: Final = ("sse", "websocket")
TRACKING_DROP_REASONS: Final = ("full", "failed", "shutdown")

# -- HTTP ---------------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "zenml_serving_http_requests",
    "HTTP requests answered, by route template, method and the status code that really left.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_REQUEST_DURATION = Histogram(
    "zenml_serving_http_request_duration_seconds",
    "Time from request to the last byte of the response (to the headers for event streams).",
    ["route", "method"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)

# -- invocations and steps ----------------------------------------------------------------------

INVOCATIONS = Counter(
    "zenml_serving_invocations",
    "Invocations by mode and outcome as the client saw it "
    "(completed, failed, cancelled, timed_out, rejected).",
    ["mode", "outcome"],
    registry=REGISTRY,
)
INVOCATION_DURATION = Histogram(
    "zenml_serving_invocation_duration_seconds",
    "Time an invocation's steps ran on a worker thread (queue wait excluded).",
    ["mode"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
QUEUE_WAIT = Histogram(
    "zenml_serving_queue_wait_seconds",
    "Time an invocation waited between submission and getting an execution slot.",
    ["mode"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
STEP_DURATION = Histogram(
    "zenml_serving_step_duration_seconds",
    "Time one step took, retries included, by step and status (completed, failed).",
    ["step", "status"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
STEP_FAILURES = Counter(
    "zenml_serving_step_failures",
    "Steps that failed after their retries, by step and exception type.",
    ["step", "error_type"],
    registry=REGISTRY,
)
REJECTIONS = Counter(
    "zenml_serving_rejections",
    "Invocations refused at admission: overloaded (429) or shutting_down (503).",
    ["reason"],
    registry=REGISTRY,
)

# -- state gauges (sampled from the execution manager) -----------------------------------------

EXECUTIONS_IN_FLIGHT = Gauge(
    "zenml_serving_executions_in_flight",
    "Executions holding a slot (running, or orphaned after a timeout).",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
EXECUTIONS_ORPHANED = Gauge(
    "zenml_serving_executions_orphaned",
    "Executions whose caller gave up (timeout, cancel) while their step still runs.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
QUEUE_DEPTH = Gauge(
    "zenml_serving_queue_depth",
    "Invocations waiting for an execution slot.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
QUEUE_CAPACITY = Gauge(
    "zenml_serving_queue_capacity",
    "Invocations that may wait for a slot before 429 is answered (summed over workers).",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
CONCURRENCY_LIMIT = Gauge(
    "zenml_serving_concurrency_limit",
    "Executions that may run at once (summed over workers).",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
JOBS = Gauge(
    "zenml_serving_jobs",
    "Async job records kept, by state.",
    ["state"],
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
OPEN_STREAMS = Gauge(
    "zenml_serving_open_streams",
    "Open event streams by kind (sse, websocket).",
    ["kind"],
    registry=REGISTRY,
    multiprocess_mode="livesum",
)

# -- ZenML run tracking (written by the tracking writer) ----------------------------------------

TRACKING_QUEUE_DEPTH = Gauge(
    "zenml_serving_tracking_queue_depth",
    "Run-tracking records waiting for the background writer.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
TRACKING_DROPPED = Counter(
    "zenml_serving_tracking_dropped",
    "Run-tracking records dropped, by reason: full (queue), failed (store), shutdown, lost"
    " (held by a writer process that died).",
    ["reason"],
    registry=REGISTRY,
)

# -- build --------------------------------------------------------------------------------------

BUILD_INFO = Gauge(
    "zenml_serving_build_info",
    "Always 1: the service version and the pipeline snapshot this process serves.",
    ["version", "pipeline", "snapshot_id"],
    registry=REGISTRY,
    multiprocess_mode="livemax",
)

# -- served versions (reload) -------------------------------------------------------------------

RELOADS = Counter(
    "zenml_serving_reloads",
    "Reloads of the served artifacts, model versions and pipeline state, by outcome "
    "(reloaded, failed: the old version keeps serving).",
    ["outcome"],
    registry=REGISTRY,
)
SERVED_VERSION = Gauge(
    "zenml_serving_served_version_loaded_timestamp_seconds",
    "Unix time the served version (1 at startup, +1 per reload) was loaded; 0 once replaced.",
    ["version"],
    registry=REGISTRY,
    multiprocess_mode="livemax",
)

ALL_METRICS: Final[tuple[MetricWrapperBase, ...]] = (
    HTTP_REQUESTS,
    HTTP_REQUEST_DURATION,
    INVOCATIONS,
    INVOCATION_DURATION,
    QUEUE_WAIT,
    STEP_DURATION,
    STEP_FAILURES,
    REJECTIONS,
    EXECUTIONS_IN_FLIGHT,
    EXECUTIONS_ORPHANED,
    QUEUE_DEPTH,
    QUEUE_CAPACITY,
    CONCURRENCY_LIMIT,
    JOBS,
    OPEN_STREAMS,
    TRACKING_QUEUE_DEPTH,
    TRACKING_DROPPED,
    BUILD_INFO,
    RELOADS,
    SERVED_VERSION,
)


def _initialise_children() -> None:
    """Known label values start at 0, so rates and ratios exist before the first event."""
    for mode in INVOCATION_MODES:
        for outcome in INVOCATION_OUTCOMES:
            INVOCATIONS.labels(mode=mode, outcome=outcome)
    for reason in REJECTION_REASONS:
        REJECTIONS.labels(reason=reason)
    for kind in STREAM_KINDS:
        OPEN_STREAMS.labels(kind=kind)
    for state in JOB_STATES:
        JOBS.labels(state=state)
    for reason in TRACKING_DROP_REASONS:
        TRACKING_DROPPED.labels(reason=reason)
    for outcome in ("reloaded", "failed"):
        RELOADS.labels(outcome=outcome)


_initialise_children()

_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
_READ_ATTEMPTS = 3
"""prometheus_client picks its storage from this variable when first imported; so do we."""

if _MULTIPROC_DIR is None:
    # Single process: also export the process, platform and GC collectors (they do not work
    # across processes, so multiprocess mode leaves them out).
    for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        REGISTRY.register(_collector)


def multiprocess_dir() -> str | None:
    """The shared metrics folder if this process runs in multiprocess mode."""
    return _MULTIPROC_DIR


def render(accept: str | None) -> tuple[bytes, str]:
    """The exposition (Prometheus text or OpenMetrics, as `accept` asks) and its content type."""
    encoder, content_type = choose_encoder(accept or "")
    if not _MULTIPROC_DIR:
        return encoder(REGISTRY), content_type
    attempts = _READ_ATTEMPTS
    while True:
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry, path=_MULTIPROC_DIR)  # type: ignore[no-untyped-call]
        try:
            return encoder(registry), content_type
        except (struct.error, ValueError):
            # A worker is creating its file right now: it is empty for a moment. Read again.
            attempts -= 1
            if not attempts:
                raise
            time.sleep(0.01)


def mark_process_dead(pid: int | None = None) -> None:
    """A worker is exiting: drop its `live*` gauge files (no-op in single-process mode)."""
    if _MULTIPROC_DIR:
        _multiprocess.mark_process_dead(pid or os.getpid(), _MULTIPROC_DIR)  # type: ignore[no-untyped-call]


def exported_series_names() -> frozenset[str]:
    """Every sample name the service can export (families with their type's suffixes)."""
    names: set[str] = set()
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "gauge": ("",),
    }
    for metric in ALL_METRICS:
        for family in metric.describe():
            names.update(family.name + suffix for suffix in suffixes[family.type])
    return frozenset(names)


def count_tracking_drops(reason: str, count: int) -> None:
    """The tracking writer's drop hook (`TrackingWriter(on_drop=...)`)."""
    child(TRACKING_DROPPED, reason).inc(count)


async def sample_state(
    manager: ServingExecutionManager, tracking: TrackingWriter | None = None
) -> None:
    """Set the state gauges from this process's execution manager, job store, tracking.

    Jobs are counted for this process only (`owner`), so that workers add up even when they
    share a Redis store; an unreachable store leaves the job gauges as they were.
    """
    slots = manager.slots
    EXECUTIONS_IN_FLIGHT.set(slots.in_use)
    EXECUTIONS_ORPHANED.set(slots.orphaned)
    QUEUE_DEPTH.set(slots.waiting)
    QUEUE_CAPACITY.set(slots.max_waiting)
    CONCURRENCY_LIMIT.set(slots.limit)
    if tracking is not None:
        TRACKING_QUEUE_DEPTH.set(tracking.depth)
    counts = manager.job_counts()
    for state in JOB_STATES:
        child(JOBS, state).set(counts.get(state, 0))


@functools.lru_cache(maxsize=8192)
def child(metric: MetricWrapperBase, *labels: str) -> Any:
    """`metric.labels(*labels)`, remembered: hot paths skip the library's lookup and lock.

    Label values here come from bounded sets (routes, steps, modes, statuses)."""
    return metric.labels(*labels)


def observe_step(step: str, status: str, duration_s: float, error_type: str | None) -> None:
    """A step ended: its duration, and its failure (after retries) by exception type."""
    child(STEP_DURATION, step, status).observe(duration_s)
    if error_type is not None:
        child(STEP_FAILURES, step, error_type).inc()


def count_outcome(mode: str, outcome: str) -> None:
    """Count an invocation's outcome as the execution manager reports it to the client.

    `outcome` is completed, failed, cancelled, timed_out, or a rejection reason
    (overloaded, shutting_down), which counts as `rejected` plus a rejection.
    """
    counted = counted_as(outcome)
    if counted == "rejected":
        child(REJECTIONS, outcome).inc()
    child(INVOCATIONS, mode, counted).inc()
