"""In-memory job backend for a single serving process (the default)."""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec

from zenml_serving.execution.backend import JobStoreFullError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from zenml_serving.execution.records import JobEvent, JobRecord

__all__ = ["MemoryEventLog", "MemoryJobStore"]

_encoder = msgspec.json.Encoder()


class MemoryJobStore:
    """Job records in insertion order, evicted by TTL (finished jobs), count and bytes (oldest
    finished first). A record's bytes are its JSON size; its final event shares the outputs
    object with it, so the event log adds no second copy to count."""

    def __init__(self, *, ttl_s: float, max_jobs: int, max_job_bytes: int = 1 << 40) -> None:
        self._ttl_s = ttl_s
        self._max_jobs = max_jobs
        self._max_bytes = max_job_bytes
        self._records: OrderedDict[str, JobRecord] = OrderedDict()
        self._sizes: dict[str, int] = {}
        self._bytes = 0
        self._cancel: Callable[[str], Awaitable[None]] | None = None

    async def put(self, record: JobRecord) -> list[str]:
        """Create or replace a record (a new one goes to the newest end, after making room);
        return the ids evicted for it."""
        size = len(_encoder.encode(record))
        job_id = record.job_id
        evicted = [] if job_id in self._records else self._make_room(size)
        self._bytes += size - self._sizes.get(job_id, 0)
        self._sizes[job_id] = size
        self._records[job_id] = record
        if self._bytes > self._max_bytes:  # a job finished with large outputs
            evicted += self._drop_oldest_finished(
                lambda: self._bytes > self._max_bytes, keep=job_id
            )
        return evicted

    def _make_room(self, size: int) -> list[str]:
        def over() -> bool:
            return len(self._records) >= self._max_jobs or self._bytes + size > self._max_bytes

        evicted = self._drop_oldest_finished(over)
        if len(self._records) >= self._max_jobs:
            raise JobStoreFullError(
                f"{len(self._records)} unfinished jobs are kept, the most "
                "ZENML_SERVING_MAX_JOBS allows"
            )
        if self._bytes + size > self._max_bytes:
            raise JobStoreFullError(
                f"the kept jobs take {self._bytes} bytes; ZENML_SERVING_MAX_JOB_BYTES allows "
                f"{self._max_bytes}"
            )
        return evicted

    def _drop_oldest_finished(self, over: Callable[[], bool], keep: str = "") -> list[str]:
        dropped: list[str] = []
        if not over():
            return dropped
        for job_id, kept in list(self._records.items()):
            if kept.finished and job_id != keep:
                self._drop(job_id)
                dropped.append(job_id)
                if not over():
                    break
        return dropped

    def _drop(self, job_id: str) -> None:
        del self._records[job_id]
        self._bytes -= self._sizes.pop(job_id, 0)

    async def get(self, job_id: str) -> JobRecord | None:
        """The record, if kept."""
        return self._records.get(job_id)

    async def query(
        self, *, status: str | None, limit: int, offset: int
    ) -> tuple[list[JobRecord], int]:
        """Newest first, without outputs."""
        matching = [r for r in reversed(self._records.values()) if status in (None, r.status)]
        page = matching[offset : offset + limit]
        return [msgspec.structs.replace(r, outputs=None) for r in page], len(matching)

    async def evict(self, now: float) -> list[str]:
        """Drop expired finished records, then the oldest finished ones beyond the bounds."""
        expired: list[str] = []
        for job_id, r in list(self._records.items()):
            if r.finished_at is not None and now - r.finished_at > self._ttl_s:
                self._drop(job_id)
                expired.append(job_id)
        expired += self._drop_oldest_finished(
            lambda: len(self._records) > self._max_jobs or self._bytes > self._max_bytes
        )
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
