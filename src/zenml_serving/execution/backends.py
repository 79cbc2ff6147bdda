"""Build the job backend the configuration asks for: in memory (default) or Redis."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from zenml_serving.execution.memory import MemoryEventLog, MemoryJobStore

if TYPE_CHECKING:
    from zenml_serving.config import ServingConfig
    from zenml_serving.execution.backend import EventLog, JobStore

__all__ = ["JobBackend", "build_backend", "process_owner"]

_log = structlog.stdlib.get_logger(__name__)


def process_owner() -> str:
    """How this process is named in `JobRecord.owner` (host:pid; a pod name on Kubernetes)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class JobBackend:
    """The job store and event log of one serving process."""

    jobs: JobStore
    events: EventLog


def build_backend(config: ServingConfig, snapshot_id: object) -> JobBackend:
    """Redis when ZENML_SERVING_REDIS_URL is set (keys namespaced by prefix and snapshot),
    else in memory. Call in each worker process (after granian forks)."""
    if config.redis_url is None:
        if config.workers > 1:
            _log.warning(
                "job_backend_per_worker",
                detail=f"ZENML_SERVING_WORKERS={config.workers} with the in-memory job backend: "
                "a job is visible only to the worker that accepted it; set "
                "ZENML_SERVING_REDIS_URL to share jobs between workers",
            )
        return JobBackend(
            jobs=MemoryJobStore(ttl_s=config.job_ttl_s, max_jobs=config.max_jobs),
            events=MemoryEventLog(max_events_per_job=config.max_events_per_job),
        )
    from zenml_serving.execution.redis_backend import RedisJobBackend

    backend = RedisJobBackend(
        config.redis_url,
        namespace=f"{config.redis_prefix}:{{{snapshot_id}}}",
        owner=process_owner(),
        job_ttl_s=config.job_ttl_s,
        max_jobs=config.max_jobs,
        max_events_per_job=config.max_events_per_job,
        request_timeout_s=config.request_timeout_s,
        timeout_s=config.redis_timeout_s,
    )
    return JobBackend(jobs=backend, events=backend)
