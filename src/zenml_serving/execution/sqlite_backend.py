"""SQLite job backend: the granian workers of one host share their async jobs through a file.

Chosen by default when ZENML_SERVING_WORKERS > 1 and no Redis URL is set (see `backends.py`):
without it each worker kept its own jobs in memory, and a poll, stream, cancel or WebSocket
subscribe that the shared port handed to another worker answered 404. Redis stays the
backend across hosts; this one needs no server, only a local folder
(ZENML_SERVING_RUNTIME_DIR): one database per snapshot, `jobs-<snapshot id>.sqlite3`, in WAL
mode so readers never wait for the writer. It keeps the contract of the other backends
(`tests/integration/test_job_backends.py` runs one suite over all three).

Why SQLite from the standard library: it is the one well-kept embedded store that gives
several processes transactions on one file (a whole `put` with its bound checks, or a dead
owner's settlement, is one `BEGIN IMMEDIATE`), indexes for the newest-first listing, and no
dependency. Calls run on the event loop: they are short local transactions (about 90 us a
call on average here, so the 16 calls of a short job take ~1.4 ms of its worker's loop; a
thread hop per call would cost about as much again; the async submit -> result latency
beside memory and Redis is in BENCHMARKS.md), and a `busy_timeout` covers the moment another
worker holds the write lock. A locked or broken database raises BackendUnavailableError
(503), as an unreachable Redis does. The known limit of that choice: a step that holds the
GIL for seconds (C code that never releases it) while its worker's loop is inside a
transaction keeps the write lock that long, so the other workers' writes wait up to the busy
timeout (2 s, the default loop-lag limit of /health) on their loops and then answer 503; such
a step already stalls its own worker (see the README's faults table).

Tables: `jobs` (the record as JSON without its outputs, the outputs apart so that listing
never reads them, status and times as indexed columns, and the JSON bytes of the record and
its events); `events` (per job, ids from 1, the newest `max_events_per_job` kept); `signals`
(an append-only feed, numbered, of "job X changed" and "cancel job X, owner O"); `totals`
(count and bytes of the kept jobs, kept by triggers, so a bound check is one row read).

Cross-process notification: a short poll with back-off, not a busy loop. One task per process
reads `PRAGMA data_version` (a counter SQLite keeps in the WAL index in shared memory; no
table read) and, when another process committed, the new rows of `signals`; it runs only
while this process has a subscriber waiting or an unfinished job of its own (which may be
cancelled from elsewhere), and sleeps 1 ms after a change, doubling to 20 ms while nothing
changes. The read costs ~4 us; the wake-up of the event loop around it ~100-150 us of CPU on
the machines here, so a worker with something to wait for spends about 0.5 % of one core on
it, and one with nothing to wait for nothing (`bench/idle_poll.py`, BENCHMARKS.md: two workers
with ten jobs running and ten streams open, 1.05 % of one core against Redis's 0.20 %; no job,
0.05 %). A notification mechanism (a Unix socket per worker) would wake peers sooner than
20 ms and cost nothing idle, but needs peer discovery and dead-peer cleanup; the poll is
simpler and its worst case stays well under a heartbeat. Local appends wake local
subscribers at once.

Dead owners: every process holds an exclusive `flock` on `owners/<owner>.lock` for its life;
the kernel drops it when the process dies, however it dies. A reader that finds an
unfinished job whose owner's lock can be taken records it `failed` (`OwnerGone`), with the
final event, in one transaction, as the Redis backend does when no process listens on the
owner's cancel channel. A job named after this process but not running here (a restarted
worker that got the same pid) is settled the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import sqlite3
import time
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from zenml_serving.execution.backend import BackendUnavailableError, JobStoreFullError
from zenml_serving.execution.records import JobError, JobEvent, JobRecord, apply_event
from zenml_serving.execution.shared_backend import SharedJobBackend

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator
    from pathlib import Path

__all__ = ["SqliteJobBackend", "job_store_path"]

_log = structlog.stdlib.get_logger(__name__)

_READ_BATCH = 256
_POLL_MIN_S = 0.001
_POLL_MAX_S = 0.02
_SIGNAL_KEEP_S = 10.0
"""Signals older than this are pruned by `evict` (every 30 s): pollers read them within 20 ms,
and a subscriber that missed one rereads on its heartbeat timeout anyway. Keeps the feed small
under load (a job writes about two signals per event)."""
_BUSY_TIMEOUT_MS = 2000
"""How long a write waits for another worker's transaction (blocking this worker's loop)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    finished_at REAL,
    owner TEXT NOT NULL,
    record BLOB NOT NULL,
    outputs BLOB,
    record_bytes INTEGER NOT NULL,
    event_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_at);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created_at);
CREATE INDEX IF NOT EXISTS jobs_by_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL,
    id INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (job_id, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS signals (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    job_id TEXT NOT NULL,
    cancel_owner TEXT
);
CREATE TABLE IF NOT EXISTS totals (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    count INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals VALUES (1, 0, 0);
CREATE TRIGGER IF NOT EXISTS jobs_added AFTER INSERT ON jobs BEGIN
    UPDATE totals SET count = count + 1, bytes = bytes + new.record_bytes + new.event_bytes;
END;
CREATE TRIGGER IF NOT EXISTS jobs_changed AFTER UPDATE ON jobs BEGIN
    UPDATE totals SET bytes = bytes + new.record_bytes + new.event_bytes
        - old.record_bytes - old.event_bytes;
END;
CREATE TRIGGER IF NOT EXISTS jobs_dropped AFTER DELETE ON jobs BEGIN
    UPDATE totals SET count = count - 1, bytes = bytes - old.record_bytes - old.event_bytes;
END;
"""

_FINAL = ("completed", "failed", "cancelled", "timed_out")

_record_decoder = msgspec.json.Decoder(JobRecord)
_event_decoder = msgspec.json.Decoder(JobEvent)
_outputs_decoder = msgspec.json.Decoder(dict[str, Any])
_encoder = msgspec.json.Encoder()


def job_store_path(runtime_dir: Path, snapshot_id: object) -> Path:
    """Where the workers of one host keep the jobs of `snapshot_id`."""
    return runtime_dir / f"jobs-{snapshot_id}.sqlite3"


def _gone(owner: str) -> str:
    return f"the process that ran the job ({owner}) is gone"


def _lock_name(owner: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", owner) + ".lock"


class _Subscription:
    """One subscriber's cursor over a job's events: read what is there, else wait for the
    job's waiter (set by a local append or by the poller) or the timeout."""

    def __init__(self, backend: SqliteJobBackend, job_id: str, after: int) -> None:
        self._backend = backend
        self._job_id = job_id
        self._cursor = after
        self._buffer: deque[JobEvent] = deque()
        self._done = False
        self._waiter: asyncio.Event | None = None

    @property
    def done(self) -> bool:
        return self._done

    async def next(self, timeout: float) -> JobEvent | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        recheck = False
        while True:
            if self._buffer:
                event = self._buffer.popleft()
                self._cursor = event.id
                self._done = event.final
                return event
            waiter = self._waiter
            if waiter is None or waiter.is_set() or recheck:
                # Taken before the read: a change after the read sets this waiter.
                waiter = self._waiter = self._backend._waiter(self._job_id)
                self._buffer.extend(self._backend._read_after(self._job_id, self._cursor))
                recheck = False
                if self._buffer:
                    continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                # A quiet stream asks once per heartbeat whether the job's process is alive
                # (`get` settles the job if not), so its subscribers get an end.
                with contextlib.suppress(BackendUnavailableError):
                    await self._backend.get(self._job_id)
                self._waiter = None
                return None
            try:
                await asyncio.wait_for(waiter.wait(), remaining)
            except asyncio.TimeoutError:
                recheck = True


class SqliteJobBackend(SharedJobBackend):
    """Job store and event log in one SQLite file, shared by the processes of one host."""

    def __init__(
        self,
        path: Path,
        *,
        owner: str,
        job_ttl_s: float,
        max_jobs: int,
        max_job_bytes: int,
        max_events_per_job: int,
        request_timeout_s: float,
        cancel_wait_s: float = 5.0,
    ) -> None:
        """`owner` names this process exactly as the execution manager names it in
        `JobRecord.owner` (cancellations are routed by it)."""
        self.path = path
        self.owner = owner
        self._ttl_s = job_ttl_s
        self._max_jobs = max_jobs
        self._max_bytes = max_job_bytes
        self._max_events = max_events_per_job
        self._orphan_age_s = request_timeout_s + job_ttl_s
        self._cancel_wait_s = cancel_wait_s
        self._owners_dir = path.parent / "owners"
        self._db: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._cancel: Callable[[str], Awaitable[None]] | None = None
        self._waiters: weakref.WeakValueDictionary[str, asyncio.Event] = (
            weakref.WeakValueDictionary()
        )
        self._local: set[str] = set()
        """Unfinished jobs this process runs (it must hear of cancellations for them)."""
        self._poller: asyncio.Task[None] | None = None
        self._poll_needed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._signal_cursor = 0
        self._data_version = -1

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the database (creating it and its folder, private to this user) and take this
        process's owner lock. A database that cannot be opened stops startup."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._owners_dir.mkdir(mode=0o700, exist_ok=True)
        lock_path = self._owners_dir / _lock_name(self.owner)
        self._lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        db = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=_BUSY_TIMEOUT_MS / 1000,
        )
        os.chmod(self.path, 0o600)  # outputs may be sensitive: this user only
        db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")  # jobs need no durability across power loss
        # One transaction, so that workers starting together create the schema once.
        db.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
        self._db = db
        row = db.execute("SELECT COALESCE(MAX(seq), 0) FROM signals").fetchone()
        self._signal_cursor = int(row[0])
        self._data_version = self._version()
        self._poller = asyncio.create_task(self._poll(), name="zenml-serving-sqlite-poller")
        _log.info("job_backend_connected", backend="sqlite", path=str(self.path))

    async def close(self) -> None:
        """Stop the poller, close the database, release the owner lock."""
        tasks = [t for t in (self._poller, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                (self._owners_dir / _lock_name(self.owner)).unlink()
            os.close(self._lock_fd)
            self._lock_fd = None

    def describe(self) -> dict[str, object]:
        """Shared by the processes of this host that serve the same snapshot."""
        return {
            "kind": "sqlite",
            "shared": True,
            "connected": self._db is not None,
            "path": str(self.path),
            "owner": self.owner,
        }

    # -- plumbing ----------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise BackendUnavailableError("the SQLite job backend is not started")
        return self._db

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._conn()
        try:
            with _transaction(db):
                yield db
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc

    def _read(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        try:
            return self._conn().execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: sqlite3.Error) -> BackendUnavailableError:
        _log.error("job_backend_unavailable", backend="sqlite", path=str(self.path), error=str(exc))
        return BackendUnavailableError(f"the job backend (SQLite at {self.path}) failed: {exc}")

    def _version(self) -> int:
        return int(self._conn().execute("PRAGMA data_version").fetchone()[0])

    # -- job store ---------------------------------------------------------------------------

    async def put(self, record: JobRecord) -> list[str]:
        """Create or replace the record (a final record is never replaced); a new one first
        makes room within the bounds."""
        job_id = record.job_id
        outputs = None if record.outputs is None else _encoder.encode(record.outputs)
        body = _encoder.encode(msgspec.structs.replace(record, outputs=None))
        size = len(body) + (0 if outputs is None else len(outputs))
        mine = record.owner == self.owner
        evicted: list[str] = []
        with self._write() as db:
            current = db.execute("SELECT status FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            if current is not None and current[0] in _FINAL:
                applied = False
            else:
                if current is None:
                    evicted = self._make_room(db, size)
                    db.execute(
                        "INSERT INTO jobs (job_id, status, created_at, finished_at, owner, "
                        "record, outputs, record_bytes, event_bytes) VALUES (?, ?, ?, ?, ?, ?, "
                        "?, ?, (SELECT COALESCE(SUM(LENGTH(body)), 0) FROM events "
                        "WHERE job_id = ?))",
                        (
                            job_id,
                            record.status,
                            record.created_at,
                            record.finished_at,
                            record.owner,
                            body,
                            outputs,
                            size,
                            job_id,
                        ),
                    )
                else:
                    db.execute(
                        "UPDATE jobs SET status = ?, finished_at = ?, owner = ?, record = ?, "
                        "outputs = ?, record_bytes = ? WHERE job_id = ?",
                        (
                            record.status,
                            record.finished_at,
                            record.owner,
                            body,
                            outputs,
                            size,
                            job_id,
                        ),
                    )
                if record.finished:
                    evicted += self._drop_finished_over_bytes(db, keep=job_id)
                    self._signal(db, job_id)
                applied = True
        if applied and mine and not record.finished:
            self._local.add(job_id)
            self._poll_needed.set()
        elif mine and record.finished:
            self._local.discard(job_id)
        if applied and record.finished:
            self._wake(job_id)
        if not applied and job_id in self._local:
            # Another process recorded the job as final (it found this one's job stale, or a
            # cancellation was settled elsewhere): stop running it here too.
            self._local.discard(job_id)
            _log.warning("job_finished_elsewhere", job_id=job_id)
            self._spawn(self._cancel_locally(job_id))
        return evicted

    def _make_room(self, db: sqlite3.Connection, size: int) -> list[str]:
        count, total = db.execute("SELECT count, bytes FROM totals").fetchone()
        evicted: list[str] = []
        while count >= self._max_jobs or total + size > self._max_bytes:
            row = db.execute(
                "SELECT job_id, record_bytes + event_bytes FROM jobs "
                "WHERE finished_at IS NOT NULL ORDER BY created_at LIMIT 1"
            ).fetchone()
            if row is None:
                break
            self._delete(db, [row[0]])
            evicted.append(row[0])
            count, total = count - 1, total - row[1]
        if count >= self._max_jobs:
            raise JobStoreFullError(
                f"{count} unfinished jobs are kept, the most ZENML_SERVING_MAX_JOBS allows"
            )
        if total + size > self._max_bytes:
            raise JobStoreFullError(
                f"the kept jobs take {total} bytes; ZENML_SERVING_MAX_JOB_BYTES allows "
                f"{self._max_bytes}"
            )
        return evicted

    def _drop_finished_over_bytes(self, db: sqlite3.Connection, keep: str) -> list[str]:
        (total,) = db.execute("SELECT bytes FROM totals").fetchone()
        evicted: list[str] = []
        while total > self._max_bytes:
            row = db.execute(
                "SELECT job_id, record_bytes + event_bytes FROM jobs "
                "WHERE finished_at IS NOT NULL AND job_id != ? ORDER BY created_at LIMIT 1",
                (keep,),
            ).fetchone()
            if row is None:
                break
            self._delete(db, [row[0]])
            evicted.append(row[0])
            total -= row[1]
        return evicted

    @staticmethod
    def _delete(db: sqlite3.Connection, job_ids: list[str]) -> None:
        for job_id in job_ids:
            db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
            db.execute("DELETE FROM events WHERE job_id = ?", (job_id,))

    def _signal(self, db: sqlite3.Connection, job_id: str, cancel_owner: str | None = None) -> None:
        db.execute(
            "INSERT INTO signals (at, job_id, cancel_owner) VALUES (?, ?, ?)",
            (time.time(), job_id, cancel_owner),
        )

    async def get(self, job_id: str) -> JobRecord | None:
        """The record. An unfinished job whose process is gone is recorded `failed` here
        (`OwnerGone`), with its final event, so pollers and streams get a final state."""
        rows = self._read("SELECT record, outputs FROM jobs WHERE job_id = ?", (job_id,))
        if not rows:
            return None
        record = self._decode(rows[0][0], rows[0][1])
        if not record.finished and self._owner_gone(record):
            settled = self._record_gone(record, "job.failed")
            return record if settled is None else settled
        return record

    @staticmethod
    def _decode(body: bytes, outputs: bytes | None) -> JobRecord:
        record = _record_decoder.decode(body)
        if outputs is not None:
            record = msgspec.structs.replace(record, outputs=_outputs_decoder.decode(outputs))
        return record

    def _owner_gone(self, record: JobRecord) -> bool:
        if not record.owner:
            return False
        if record.owner == self.owner:
            return record.job_id not in self._local  # an earlier process with our name
        lock_path = self._owners_dir / _lock_name(record.owner)
        try:
            fd = os.open(lock_path, os.O_RDWR)
        except FileNotFoundError:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # its process holds the lock: alive
        finally:
            os.close(fd)  # also releases the lock if we took it
        return True

    def _record_gone(self, record: JobRecord, event_type: str) -> JobRecord | None:
        """Finish the job of a gone process with `event_type` and its final event, in one
        transaction; None if it finished meanwhile."""
        event = JobEvent(
            type=event_type,
            job_id=record.job_id,
            at=time.time(),
            error=JobError(type="OwnerGone", message=_gone(record.owner)),
        )
        with self._write() as db:
            row = db.execute(
                "SELECT record FROM jobs WHERE job_id = ?", (record.job_id,)
            ).fetchone()
            if row is None:
                return None
            current = _record_decoder.decode(row[0])
            if current.finished:
                return None
            stored = self._append_in(db, event)
            settled = apply_event(current, stored)
            body = _encoder.encode(settled)
            db.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, record = ?, "
                "record_bytes = ? WHERE job_id = ?",
                (settled.status, settled.finished_at, body, len(body), record.job_id),
            )
        self._wake(record.job_id)
        _log.warning(
            "job_settled_for_gone_owner",
            job_id=record.job_id,
            owner=record.owner,
            status=settled.status,
        )
        return settled

    async def query(
        self, *, status: str | None, limit: int, offset: int
    ) -> tuple[list[JobRecord], int]:
        """Newest first (by created_at), optionally one status; outputs are not read."""
        if status is None:
            rows = self._read(
                "SELECT record FROM jobs ORDER BY created_at DESC LIMIT ? OFFSET ?",
                (limit, offset),
            )
            total = self._read("SELECT count FROM totals")[0][0]
        else:
            rows = self._read(
                "SELECT record FROM jobs WHERE status = ? ORDER BY created_at DESC "
                "LIMIT ? OFFSET ?",
                (status, limit, offset),
            )
            total = self._read("SELECT COUNT(*) FROM jobs WHERE status = ?", (status,))[0][0]
        return [_record_decoder.decode(row[0]) for row in rows], int(total)

    async def evict(self, now: float) -> list[str]:
        """Drop finished records past the TTL, unfinished ones whose process must be gone
        (older than request timeout + TTL), then the oldest finished ones beyond the
        bounds; prune old signals."""
        with self._write() as db:
            expired = [
                row[0]
                for row in db.execute(
                    "SELECT job_id FROM jobs WHERE finished_at < ? OR (finished_at IS NULL "
                    "AND created_at < ?)",
                    (now - self._ttl_s, now - self._orphan_age_s),
                )
            ]
            self._delete(db, expired)
            count, total = db.execute("SELECT count, bytes FROM totals").fetchone()
            for job_id, size in db.execute(
                "SELECT job_id, record_bytes + event_bytes FROM jobs "
                "WHERE finished_at IS NOT NULL ORDER BY created_at"
            ).fetchall():
                if count <= self._max_jobs and total <= self._max_bytes:
                    break
                self._delete(db, [job_id])
                expired.append(job_id)
                count, total = count - 1, total - size
            db.execute("DELETE FROM signals WHERE at < ?", (now - _SIGNAL_KEEP_S,))
        self._local.difference_update(expired)
        return expired

    # -- cancellation ------------------------------------------------------------------------

    def on_cancel_request(self, callback: Callable[[str], Awaitable[None]]) -> None:
        """Register the process's cancellation handler."""
        self._cancel = callback

    async def request_cancel(self, job_id: str) -> None:
        """Cancel here if this process runs the job; else signal its process and wait (up to
        a few seconds) for it to record the outcome. A gone process's job is recorded
        cancelled here."""
        record = await self.get(job_id)
        if record is None or record.finished:
            return
        if job_id in self._local:
            await self._cancel_locally(job_id)
            return
        if self._owner_gone(record):
            self._record_gone(record, "job.cancelled")
            return
        with self._write() as db:
            self._signal(db, job_id, cancel_owner=record.owner)
        await self._wait_until_finished(job_id)

    # -- event log ---------------------------------------------------------------------------

    async def append(self, event: JobEvent) -> JobEvent:
        """Store `event` with the job's next id, keep the newest `max_events_per_job`."""
        with self._write() as db:
            stored = self._append_in(db, event)
        self._wake(event.job_id)
        return stored

    def _append_in(self, db: sqlite3.Connection, event: JobEvent) -> JobEvent:
        job_id = event.job_id
        (last,) = db.execute(
            "SELECT COALESCE(MAX(id), 0) FROM events WHERE job_id = ?", (job_id,)
        ).fetchone()
        stored = msgspec.structs.replace(event, id=last + 1)
        body = _encoder.encode(stored)
        db.execute(
            "INSERT INTO events (job_id, id, body) VALUES (?, ?, ?)", (job_id, stored.id, body)
        )
        dropped = db.execute(
            "DELETE FROM events WHERE job_id = ? AND id <= ? RETURNING LENGTH(body)",
            (job_id, stored.id - self._max_events),
        ).fetchall()
        db.execute(
            "UPDATE jobs SET event_bytes = event_bytes + ? WHERE job_id = ?",
            (len(body) - sum(row[0] for row in dropped), job_id),
        )
        self._signal(db, job_id)
        return stored

    async def subscribe(self, job_id: str, after: int = 0) -> _Subscription:
        """A cursor over the job's events after id `after`; KeyError if it has none."""
        if not self._read("SELECT 1 FROM events WHERE job_id = ? LIMIT 1", (job_id,)):
            raise KeyError(job_id)
        return _Subscription(self, job_id, after)

    async def forget(self, job_id: str) -> None:
        """Drop the job's history."""
        with self._write() as db:
            db.execute("DELETE FROM events WHERE job_id = ?", (job_id,))
            db.execute("UPDATE jobs SET event_bytes = 0 WHERE job_id = ?", (job_id,))

    def _read_after(self, job_id: str, cursor: int) -> list[JobEvent]:
        rows = self._read(
            "SELECT body FROM events WHERE job_id = ? AND id > ? ORDER BY id LIMIT ?",
            (job_id, cursor, _READ_BATCH),
        )
        return [_event_decoder.decode(row[0]) for row in rows]

    # -- notification ------------------------------------------------------------------------

    def _waiter(self, job_id: str) -> asyncio.Event:
        """The event set at the job's next change (shared by its local subscribers)."""
        waiter = self._waiters.get(job_id)
        if waiter is None:
            waiter = self._waiters[job_id] = asyncio.Event()
            self._poll_needed.set()
        return waiter

    async def _poll(self) -> None:
        """Follow the other processes' commits while someone here waits (see the module
        docstring): data_version first, the new signals only when it moved."""
        delay = _POLL_MIN_S
        while True:
            if not self._waiters and not self._local:
                self._poll_needed.clear()
                await self._poll_needed.wait()
                delay = _POLL_MIN_S
            try:
                version = self._version()
                if version != self._data_version:
                    self._data_version = version
                    self._dispatch_signals()
                    delay = _POLL_MIN_S
                else:
                    delay = min(delay * 2, _POLL_MAX_S)
            except (sqlite3.Error, BackendUnavailableError) as exc:
                _log.warning("job_backend_poll_failed", backend="sqlite", error=str(exc))
                delay = _POLL_MAX_S
            await asyncio.sleep(delay)

    def _dispatch_signals(self) -> None:
        rows = (
            self._conn()
            .execute(
                "SELECT seq, job_id, cancel_owner FROM signals WHERE seq > ? ORDER BY seq",
                (self._signal_cursor,),
            )
            .fetchall()
        )
        for seq, job_id, cancel_owner in rows:
            self._signal_cursor = seq
            if cancel_owner is None:
                self._wake(job_id)
            elif cancel_owner == self.owner:
                self._spawn(self._on_cancel_signal(job_id))

    async def _on_cancel_signal(self, job_id: str) -> None:
        if job_id in self._local:
            await self._cancel_locally(job_id)
            return
        record = await self.get(job_id)  # settles it if it was an earlier process's
        if record is not None and not record.finished:
            self._record_gone(record, "job.cancelled")


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
