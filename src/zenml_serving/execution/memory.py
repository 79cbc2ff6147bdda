"""In-memory job backend for a single serving process (the default)."""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from zenml_serving.execution.records import JobEvent, JobRecord

__all__ = ["MemoryEventLog", "MemoryJobStore"]


class MemoryJobStore:
    """Job records in insertion order, evicted by TTL (finished jobs) and count (oldest first)."""

    def __init__(self, *, ttl_s: float, max_jobs: int) -> None:
        self._ttl_s = ttl_s
        self._max_jobs = max_jobs
        self._records: OrderedDict[str, JobRecord] = OrderedDict()
        self._cancel: Callable[[str], Awaitable[None]] | None = None

    async def put(self, record: JobRecord) -> None:
        """Create or replace a record (a new one goes to the newest end)."""
        self._records[record.job_id] = record

    async def get(self, job_id: str) -> JobRecord | None:
        """The record, if kept."""
        return self._records.get(job_id)

    async def query(
        self, *, status: str | None, limit: int, offset: int
    ) -> tuple[list[JobRecord], int]:
        """Newest first."""
        matching = [r for r in reversed(self._records.values()) if status in (None, r.status)]
        return matching[offset : offset + limit], len(matching)

    async def evict(self, now: float) -> list[str]:
        """Drop expired finished records, then the oldest finished ones beyond the bound."""
        expired = [
            job_id
            for job_id, r in self._records.items()
            if r.finished_at is not None and now - r.finished_at > self._ttl_s
        ]
        for job_id in expired:
            del self._records[job_id]
        excess = len(self._records) - self._max_jobs
        if excess > 0:
            oldest_finished = [j for j, r in self._records.items() if r.finished][:excess]
            for job_id in oldest_finished:
                del self._records[job_id]
            expired += oldest_finished
        return expired

    def evicted_ids(self, candidates: list[str]) -> list[str]:
        """Which of `candidates` are no longer kept (their event history can go too)."""
        return [c for c in candidates if c not in self._records]

    async def request_cancel(self, job_id: str) -> None:
        """Cancellation is local: call the registered handler directly."""
        if self._cancel is not None:
            await self._cancel(job_id)

    def on_cancel_request(self, callback: Callable[[str], Awaitable[None]]) -> None:
        """Register the process's cancellation handler."""
        self._cancel = callback

    async def start(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    def describe(self) -> dict[str, object]:
        """In memory: jobs are visible only to the process that accepted them."""
        return {"kind": "memory", "shared": False, "connected": True}


@dataclass
class _Channel:
    events: list[JobEvent] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


class _MemorySubscription:
    def __init__(self, channel: _Channel, after: int) -> None:
        self._channel = channel
        self._cursor = after
        self._done = False

    @property
    def done(self) -> bool:
        return self._done

    async def next(self, timeout: float) -> JobEvent | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self._pending()
            if event is not None:
                self._cursor = event.id
                self._done = event.final
                return event
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            changed = self._channel.changed
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except asyncio.TimeoutError:
                return None

    def _pending(self) -> JobEvent | None:
        events = self._channel.events
        if not events or events[-1].id <= self._cursor:
            return None
        # Ids are consecutive within the retained window, so the next one is found by offset.
        index = max(0, self._cursor + 1 - events[0].id)
        return events[index]


class MemoryEventLog:
    """Per-job event lists, bounded per job, with asyncio wake-ups for live subscribers."""

    def __init__(self, *, max_events_per_job: int) -> None:
        self._max = max_events_per_job
        self._channels: dict[str, _Channel] = {}

    async def append(self, event: JobEvent) -> JobEvent:
        """Number, store and deliver `event`."""
        channel = self._channels.setdefault(event.job_id, _Channel())
        event = msgspec.structs.replace(event, id=next(channel.ids))
        channel.events.append(event)
        if len(channel.events) > self._max:
            del channel.events[0]
        channel.changed.set()
        channel.changed = asyncio.Event()
        return event

    async def subscribe(self, job_id: str, after: int = 0) -> _MemorySubscription:
        """A cursor over the job's events after id `after`."""
        if job_id not in self._channels:
            raise KeyError(job_id)
        return _MemorySubscription(self._channels[job_id], after)

    async def forget(self, job_id: str) -> None:
        """Drop a job's events."""
        self._channels.pop(job_id, None)
