"""What only the SQLite backend has to get right: a worker killed without a chance to clean
up, a restarted worker that got the same pid, and a store private to its user.

Several backend objects with different owner names on one file stand for several workers;
the contract they share with the other backends is in test_job_backends.py.
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from zenml_serving.execution.records import JobEvent, JobRecord
from zenml_serving.execution.sqlite_backend import SqliteJobBackend

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


Make = Callable[..., Awaitable[SqliteJobBackend]]


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Make]:
    """`await make(owner=...)`: started backends on one file, closed afterwards."""
    started: list[SqliteJobBackend] = []

    async def build(owner: str, **options: Any) -> SqliteJobBackend:
        backend = SqliteJobBackend(
            tmp_path / "runtime" / "jobs.sqlite3",
            owner=owner,
            job_ttl_s=60,
            max_jobs=100,
            max_job_bytes=1 << 30,
            max_events_per_job=100,
            request_timeout_s=300,
            **options,
        )
        await backend.start()
        started.append(backend)
        return backend

    yield build
    for backend in started:
        await backend.close()


def queued(job_id: str, owner: str) -> JobRecord:
    return JobRecord(job_id=job_id, created_at=time.time(), owner=owner)


class TestDeadWorkers:
    """However a worker ends, its unfinished jobs get a final state."""

    async def test_a_worker_killed_without_cleaning_up(self, make: Make) -> None:
        """SIGKILL runs no `close`: the lock file stays, but the kernel released the lock."""
        reader, doomed = await make("host:1"), await make("host:2")
        await doomed.put(queued("j", "host:2"))
        await doomed.append(JobEvent(type="job.queued", job_id="j", at=0))
        assert doomed._lock_fd is not None
        os.close(doomed._lock_fd)  # what the kernel does for a dead process
        doomed._lock_fd = None

        record = await reader.get("j")

        assert record is not None
        assert record.status == "failed"
        assert record.error is not None
        assert record.error.type == "OwnerGone"
        subscription = await reader.subscribe("j")
        events = [await subscription.next(1.0) for _ in range(2)]
        assert [(e.id, e.type) for e in events if e is not None] == [
            (1, "job.queued"),
            (2, "job.failed"),
        ]

    async def test_a_restarted_worker_with_the_same_pid_settles_the_old_job(
        self, make: Make
    ) -> None:
        previous = await make("pod:7")
        await previous.put(queued("j", "pod:7"))
        await previous.close()
        current = await make("pod:7")

        record = await current.get("j")

        assert record is not None
        assert record.status == "failed"
        assert record.error is not None
        assert "pod:7" in record.error.message

    async def test_two_workers_starting_together_share_one_schema(self, make: Make) -> None:
        a, b = await asyncio.gather(make("host:1"), make("host:2"))
        await a.put(queued("j", "host:1"))
        seen = await b.get("j")
        assert seen is not None
        assert seen.job_id == "j"


class TestPrivacy:
    """Job outputs may be sensitive: only the service's user may read the store."""

    async def test_the_file_and_its_folder_are_private(self, make: Make) -> None:
        backend = await make("host:1")
        assert stat.S_IMODE(os.stat(backend.path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(backend.path.parent).st_mode) == 0o700
