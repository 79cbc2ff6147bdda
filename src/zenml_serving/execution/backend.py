"""The two small interfaces a job backend implements: a job store and an event log.

The in-memory backend (`memory.py`) serves one process; the SQLite backend (`sqlite_backend.py`)
the workers of one host; the Redis backend (`redis_backend.py`) several workers and replicas,
all behind the same interfaces, so controllers and the execution manager do not change with
the backend. Every store is bounded by count (`max_jobs`) and by bytes (`max_job_bytes`, the
JSON size of the kept records and, where they are stored apart, their events): a new record
first evicts the oldest finished ones, and is refused (`JobStoreFullError`) when only
unfinished jobs are left to evict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from zenml_serving.execution.records import JobEvent, JobRecord

__all__ = [
    "BackendUnavailableError",
    "EventLog",
    "JobStore",
    "JobStoreFullError",
    "Subscription",
]


class BackendUnavailableError(RuntimeError):
    """The job backend cannot be reached; async and stream endpoints answer 503."""


class JobStoreFullError(RuntimeError):
    """A new job cannot be kept: the store is at its bound and every kept job is unfinished.

    The message names the bound (ZENML_SERVING_MAX_JOBS or ZENML_SERVING_MAX_JOB_BYTES)."""


class JobStore(Protocol):
    """Keeps job records, bounded by count, bytes and age."""

    async def put(self, record: JobRecord) -> list[str]:
        """Create or replace the record of `record.job_id`. A new record that would pass a
        bound first evicts the oldest finished records; JobStoreFullError if that is not
        enough. A finished record past the byte bound evicts older finished ones. Returns
        the ids evicted (their event histories can go too)."""

    async def get(self, job_id: str) -> JobRecord | None:
        """The record, or None if unknown or evicted."""

    async def query(
        self, *, status: str | None, limit: int, offset: int
    ) -> tuple[list[JobRecord], int]:
        """Records newest first, filtered by status, without their outputs (a page of large
        results must not be read whole: outputs come from `get`); and how many match."""

    async def evict(self, now: float) -> list[str]:
        """Drop finished records past their TTL and the oldest beyond the count bound; return
        the ids dropped (their event histories can go too)."""

    async def request_cancel(self, job_id: str) -> None:
        """Ask whichever process runs `job_id` to cancel it."""

    def on_cancel_request(self, callback: Callable[[str], Awaitable[None]]) -> None:
        """Register the local handler for cancellation requests (called once at startup)."""

    async def start(self) -> None:
        """Open connections and background listeners."""

    async def close(self) -> None:
        """Release connections."""

    def describe(self) -> dict[str, object]:
        """What /status shows about the backend (no I/O, nothing secret)."""


class Subscription(Protocol):
    """One subscriber's cursor over a job's events: the history after a point, then live."""

    async def next(self, timeout: float) -> JobEvent | None:
        """The next event, or None if none arrived within `timeout` seconds."""

    @property
    def done(self) -> bool:
        """Whether the final event was delivered (nothing more will come)."""


class EventLog(Protocol):
    """A bounded per-job event history with live delivery."""

    async def append(self, event: JobEvent) -> JobEvent:
        """Store `event` with the job's next id, deliver it to subscribers, return it."""

    async def subscribe(self, job_id: str, after: int = 0) -> Subscription:
        """Events of `job_id` with id > `after`; KeyError if the job has no events."""

    async def forget(self, job_id: str) -> None:
        """Drop the job's history (after its record was evicted)."""
