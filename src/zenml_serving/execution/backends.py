"""Build the job backend the configuration asks for: memory, SQLite (one host) or Redis.

ZENML_SERVING_JOB_BACKEND=auto (the default) picks Redis when ZENML_SERVING_REDIS_URL is set,
SQLite in ZENML_SERVING_RUNTIME_DIR when ZENML_SERVING_WORKERS > 1 (so that any worker answers
for any job), and memory for a single process. Per-worker jobs with several workers (a poll
that reaches another worker answers 404) happen only when `memory` is asked for explicitly.
"""

from __future__ import annotations

import os
import socket
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from zenml_serving.config import ConfigError
from zenml_serving.execution.memory import MemoryEventLog, MemoryJobStore

if TYPE_CHECKING:
    from zenml_serving.config import ServingConfig
    from zenml_serving.execution.backend import EventLog, JobStore

__all__ = ["JobBackend", "build_backend", "default_runtime_dir", "process_owner"]

_log = structlog.stdlib.get_logger(__name__)


def process_owner() -> str:
    """How this process is named in `JobRecord.owner` (host:pid; a pod name on Kubernetes)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def default_runtime_dir() -> Path:
    """`zenml-serving-<uid>` in the temporary folder: the same path for every worker of this
    user on this host, whoever started them (`zenml-serving serve` or granian directly)."""
    return Path(tempfile.gettempdir()) / f"zenml-serving-{os.getuid()}"


def _private_folder(path: Path, configured: bool) -> Path:
    """Create `path` (mode 0700) or check that an existing one is a folder of this user that
    nobody else may write: job outputs go there, and /tmp is shared."""
    variable = "ZENML_SERVING_RUNTIME_DIR"
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
    except OSError as exc:
        raise ConfigError(variable, str(path), f"a folder this user can create ({exc})") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise ConfigError(variable, str(path), "a folder (not a link) owned by this user")
    if not configured and info.st_mode & 0o077:
        raise ConfigError(variable, str(path), "a folder only its owner may use (chmod 700)")
    return path


@dataclass(frozen=True)
class JobBackend:
    """The job store and event log of one serving process."""

    jobs: JobStore
    events: EventLog


def build_backend(config: ServingConfig, snapshot_id: object) -> JobBackend:
    """The backend of ZENML_SERVING_JOB_BACKEND (see the module docstring). Call in each
    worker process (after granian forks)."""
    kind = config.effective_job_backend
    if kind == "memory":
        if config.workers > 1:
            _log.warning(
                "job_backend_per_worker",
                detail=f"ZENML_SERVING_WORKERS={config.workers} with "
                "ZENML_SERVING_JOB_BACKEND=memory: a job is visible only to the worker that "
                "accepted it (others answer 404); unset it to share jobs between the workers",
            )
        return JobBackend(
            jobs=MemoryJobStore(
                ttl_s=config.job_ttl_s,
                max_jobs=config.max_jobs,
                max_job_bytes=config.max_job_bytes,
            ),
            events=MemoryEventLog(max_events_per_job=config.max_events_per_job),
        )
    if kind == "sqlite":
        from zenml_serving.execution.sqlite_backend import SqliteJobBackend, job_store_path

        folder = _private_folder(
            config.runtime_dir or default_runtime_dir(), configured=config.runtime_dir is not None
        )
        sqlite_backend = SqliteJobBackend(
            job_store_path(folder, snapshot_id),
            owner=process_owner(),
            job_ttl_s=config.job_ttl_s,
            max_jobs=config.max_jobs,
            max_job_bytes=config.max_job_bytes,
            max_events_per_job=config.max_events_per_job,
            request_timeout_s=config.request_timeout_s,
        )
        return JobBackend(jobs=sqlite_backend, events=sqlite_backend)
    from zenml_serving.execution.redis_backend import RedisJobBackend

    assert config.redis_url is not None  # checked by ServingConfig.from_env
    backend = RedisJobBackend(
        config.redis_url,
        namespace=f"{config.redis_prefix}:{{{snapshot_id}}}",
        owner=process_owner(),
        job_ttl_s=config.job_ttl_s,
        max_jobs=config.max_jobs,
        max_job_bytes=config.max_job_bytes,
        max_events_per_job=config.max_events_per_job,
        request_timeout_s=config.request_timeout_s,
        timeout_s=config.redis_timeout_s,
    )
    return JobBackend(jobs=backend, events=backend)
