"""The two small interfaces a job backend implements: a job store and an event log.

The in-memory backend (`memory.py`) serves one process; a Redis backend serves several
workers and replicas behind the same interfaces, so controllers and the execution manager do
not change with the backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from zenml_serving.execution.records import JobEvent, JobRecord

__all__ = ["BackendUnavailableError", "EventLog", "JobStore", "Subscription"]


class BackendUnavailableError(RuntimeError):
    """The job backend cannot be reached; async and stream endpoints answer 503."""


class JobStore(Protocol):
    """Keeps job records, bounded by count and age."""

    async def put(self, record: JobRecord) -> None:
        """Create or replace the record of `record.job_id`."""

    async def get(self, job_id: str) -> JobRecord | None:
        """The record, or None if unknown or evicted."""

    async def query(
        self, *, status: str | None, limit: int, offset: int
    ) -> tuple[list[JobRecord], int]:
        """Records newest first, filtered by status; and how many match in all."""

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
