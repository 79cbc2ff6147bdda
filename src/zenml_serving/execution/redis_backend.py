"""Redis job backend: every granian worker and replica answers for every job.

One `RedisJobBackend` object is both the job store and the event log of a serving process
(the two protocols in `backend.py` share no method name). It mirrors the in-memory backend:
event ids numbered from 1 per job, a bounded history that keeps the newest events, finished
records evicted by TTL and by count (oldest first), running ones never.

Keys (P = `<ZENML_SERVING_REDIS_PREFIX>:{<snapshot id>}`; the braces put all keys of one
deployment in one Redis Cluster slot, so the scripts below may touch several of them):

    P:job:<id>         hash    s = status, d = the JobRecord as JSON without its outputs,
                               o = the outputs as JSON, b = the bytes the job counts
    P:events:<id>      stream  the job's events; entry id 0-N is event id N; MAXLEN (exact)
    P:jobs             zset    every job id, scored by created_at (listing, count bound)
    P:status:<status>  zset    job ids in that status, scored by created_at (filtered listing)
    P:finished         zset    finished job ids, scored by finished_at (TTL eviction)
    P:bytes            string  the bytes all kept jobs count (ZENML_SERVING_MAX_JOB_BYTES)

A job counts the JSON bytes of its record and, once finished, its outputs a second time (the
final event carries them too); its other events are small and not counted. A new record is
refused by the put script when it would pass the count or byte bound; the process then
evicts the oldest finished records and tries once more (JobStoreFullError if nothing could
go). Outputs live apart from the record so that listing never reads them.

Channels: `P:changed` carries a job id after each event and each final record write (it wakes
the local subscribers of that job, who then read the stream: pub/sub only says "look", the
stream is the history); `P:cancel:<owner>` carries cancellation requests to the process
`owner` that runs the job (`JobRecord.owner`, host:pid). A process with no listener on its
cancel channel is gone: reading one of its unfinished jobs (`get`, and every quiet stream once
per heartbeat) records it `failed` (`OwnerGone`), so no accepted job stays `running` forever.

Event ids are counted by the process that runs the job (the only one that appends, but for
`_record_gone`), so a retried append is recognised and not stored twice, and ids go on
counting if Redis lost the stream. While Redis is unreachable the execution manager keeps a
running job's events in order and retries them (see `ServingExecutionManager._pump`).

Expiry: the `evict` pass (every process, every maintenance interval) applies the exact TTL and
count bound, as in memory. Redis key expiry is the backstop for when no process is left to do
it: a record and its stream expire `job_ttl + 60 s` after the job finished, and
`request_timeout + job_ttl` after their last write while unfinished (the process running the
job died: no invocation outlives its request timeout otherwise).

Redis unavailable: every call raises BackendUnavailableError (the API answers 503); the outage
is logged once when it starts, again every minute while it lasts, and once when it ends.
Reconnection is redis-py's (a fresh connection per command); the pub/sub listener reconnects
itself with back-off, then wakes every local subscriber (a notification may have been lost:
pub/sub is at-most-once) and reconciles the jobs this process runs (see `_reconcile`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any, cast

import msgspec
import structlog
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from zenml_serving.config import redact_url
from zenml_serving.execution.backend import BackendUnavailableError, JobStoreFullError
from zenml_serving.execution.records import (
    JobError,
    JobEvent,
    JobRecord,
    apply_event,
)
from zenml_serving.execution.shared_backend import SharedJobBackend

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["RedisJobBackend"]

_log = structlog.stdlib.get_logger(__name__)

_STATUSES = ("queued", "running", "completed", "failed", "cancelled", "timed_out")
_UNFINISHED = ("queued", "running")
_FINAL_MARGIN_S = 60
"""Redis key expiry of a finished job comes this long after the exact TTL eviction."""
_OUTAGE_LOG_INTERVAL_S = 60.0
_READ_BATCH = 256

_DOWN: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    ReadOnlyError,  # a replica promoted away under us: writes fail until failover completes
    OSError,
)

# Replace a record and move it between the index sets, atomically; never change a final one
# (a late write of the process that ran a job must not undo a cancellation recorded elsewhere).
# A final record is announced on `changed` (a cancellation requested elsewhere waits for it).
# A new record that would pass a bound is refused: -1 (count), -2 (bytes).
# KEYS: record, jobs, finished, status sets in _STATUSES order, bytes.
# ARGV: record JSON, job id, created_at, status, finished_at or '', expiry s, changed channel,
#       outputs JSON or '', bytes the job counts, max jobs, max bytes.
_PUT = """
local current = redis.call('HGET', KEYS[1], 's')
if current == 'completed' or current == 'failed' or current == 'cancelled'
    or current == 'timed_out' then
  return 0
end
local size = tonumber(ARGV[9])
local old = 0
if current then
  old = tonumber(redis.call('HGET', KEYS[1], 'b') or '0')
else
  if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[10]) then
    return -1
  end
  if tonumber(redis.call('GET', KEYS[10]) or '0') + size > tonumber(ARGV[11]) then
    return -2
  end
end
redis.call('HSET', KEYS[1], 's', ARGV[4], 'd', ARGV[1], 'b', size)
if ARGV[8] == '' then
  redis.call('HDEL', KEYS[1], 'o')
else
  redis.call('HSET', KEYS[1], 'o', ARGV[8])
end
redis.call('INCRBY', KEYS[10], size - old)
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
local statuses = {'queued', 'running', 'completed', 'failed', 'cancelled', 'timed_out'}
for i, status in ipairs(statuses) do
  if status == ARGV[4] then
    redis.call('ZADD', KEYS[3 + i], ARGV[3], ARGV[2])
  else
    redis.call('ZREM', KEYS[3 + i], ARGV[2])
  end
end
if ARGV[5] ~= '' then
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[2])
  redis.call('PUBLISH', ARGV[7], ARGV[2])
end
return 1
"""

# Append an event with the id the process that runs the job gave it; 0 if that id is in the
# stream already (a retry after a lost reply, or the job was ended elsewhere).
# KEYS: stream. ARGV: max length, stream id, event JSON, expiry s, changed channel, job id.
_APPEND = """
local added = redis.pcall('XADD', KEYS[1], 'MAXLEN', ARGV[1], ARGV[2], 'd', ARGV[3])
if type(added) == 'table' and added.err then
  if string.find(added.err, 'equal or smaller', 1, true) then
    return 0
  end
  return added
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
"""

# Append an event with the stream's next id (for a process that does not run the job).
# KEYS: stream. ARGV: max length, event JSON, expiry s, changed channel, job id.
_APPEND_NEXT = """
local last = 0
local ok, info = pcall(redis.call, 'XINFO', 'STREAM', KEYS[1])
if ok then
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then
      last = tonumber(string.match(info[i + 1], '%-(%d+)$'))
    end
  end
end
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '0-' .. (last + 1), 'd', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return last + 1
"""

# Delete jobs (records, streams, index entries) and take their bytes off the total; a job
# already gone (another process evicted it) counts nothing. With no job left the total is
# reset (records that Redis expired while no process was left to evict them leave drift).
# KEYS: jobs, finished, status sets in _STATUSES order, bytes, then record and stream per job.
# ARGV: the job ids.
_DELETE = """
local indexes = 8
for i, job_id in ipairs(ARGV) do
  local record = KEYS[indexes + 2 * i]
  local size = redis.call('HGET', record, 'b')
  if size then
    redis.call('DECRBY', KEYS[indexes + 1], size)
  end
  redis.call('DEL', record, KEYS[indexes + 2 * i + 1])
  for j = 1, indexes do
    redis.call('ZREM', KEYS[j], job_id)
  end
end
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[indexes + 1])
end
return #ARGV
"""

_record_decoder = msgspec.json.Decoder(JobRecord)
_outputs_decoder = msgspec.json.Decoder(dict[str, Any])
_event_decoder = msgspec.json.Decoder(JobEvent)
_encoder = msgspec.json.Encoder()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _gone(owner: str) -> str:
    return f"the process that ran the job ({owner}) is gone"


def _event_id(stream_id: bytes | str) -> int:
    return int(_text(stream_id).rpartition("-")[2])


class _Subscription:
    """One subscriber's cursor over a job's stream: read what is there, else wait for a
    `changed` notification (or the timeout, after which the stream is read once more)."""

    def __init__(self, backend: RedisJobBackend, job_id: str, after: int) -> None:
        self._backend = backend
        self._job_id = job_id
        self._cursor = after
        self._buffer: deque[JobEvent] = deque()
        self._done = False
        self._waiter: asyncio.Event | None = None
        """Taken before the last read: unset, nothing was appended since (no need to read)."""
        self._recheck = True

    @property
    def done(self) -> bool:
        return self._done

    async def _settle_if_owner_gone(self) -> None:
        """A quiet stream asks once per heartbeat whether the job's process is still there
        (`get` records the job failed, with its final event, if not): a subscriber of a job
        whose process died gets the end instead of heartbeats forever."""
        with contextlib.suppress(BackendUnavailableError):
            await self._backend.get(self._job_id)
        self._recheck = True

    async def next(self, timeout: float) -> JobEvent | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._buffer:
                event = self._buffer.popleft()
                self._cursor = event.id
                self._done = event.final
                return event
            waiter = self._waiter
            if waiter is None or waiter.is_set() or self._recheck:
                waiter = self._waiter = self._backend._waiter(self._job_id)
                try:
                    self._buffer.extend(await self._backend._read_after(self._job_id, self._cursor))
                except BackendUnavailableError:
                    # Redis is down (the backend logs it): keep the stream open, look later.
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        return None
                    await asyncio.sleep(min(remaining, 1.0))
                    continue
                self._recheck = False
                if self._buffer:
                    continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                await self._settle_if_owner_gone()
                return None
            try:
                await asyncio.wait_for(waiter.wait(), remaining)
            except asyncio.TimeoutError:
                self._recheck = True  # a notification may have been lost: read once more


class RedisJobBackend(SharedJobBackend):
    """Job store and event log in Redis, shared by every process with the same namespace."""

    def __init__(
        self,
        url: str,
        *,
        namespace: str,
        owner: str,
        job_ttl_s: float,
        max_jobs: int,
        max_events_per_job: int,
        request_timeout_s: float,
        max_job_bytes: int = 1 << 40,
        timeout_s: float = 2.0,
        cancel_wait_s: float = 5.0,
    ) -> None:
        """`namespace` prefixes every key and channel; `owner` names this process exactly as
        the execution manager names it in `JobRecord.owner` (cancellations are routed by it)."""
        self.url = url
        self.namespace = namespace
        self.owner = owner
        self._ttl_s = job_ttl_s
        self._max_jobs = max_jobs
        self._max_bytes = max_job_bytes
        self._max_events = max_events_per_job
        self._final_expiry_s = math.ceil(job_ttl_s) + _FINAL_MARGIN_S
        self._orphan_expiry_s = math.ceil(request_timeout_s + job_ttl_s)
        self._orphan_age_s = request_timeout_s + job_ttl_s
        self._timeout_s = timeout_s
        self._cancel_wait_s = cancel_wait_s
        self._shown_url = redact_url(url)
        self._changed_channel = f"{namespace}:changed"
        self._client: Redis | None = None
        self._pubsub_client: Redis | None = None
        self._put_script: Any = None
        self._delete_script: Any = None
        self._append_script: Any = None
        self._append_next_script: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._retry_listener = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._cancel: Callable[[str], Awaitable[None]] | None = None
        self._waiters: weakref.WeakValueDictionary[str, asyncio.Event] = (
            weakref.WeakValueDictionary()
        )
        self._local: dict[str, JobRecord] = {}
        """Unfinished jobs this process runs: their latest record (see `get`)."""
        self._seq: dict[str, int] = {}
        """The id of the last event this process appended, per unfinished local job."""
        self._available = True
        self._down_since = 0.0
        self._last_outage_log = 0.0

    # -- keys --------------------------------------------------------------------------------

    def _job_key(self, job_id: str) -> str:
        return f"{self.namespace}:job:{job_id}"

    def _events_key(self, job_id: str) -> str:
        return f"{self.namespace}:events:{job_id}"

    def _cancel_channel(self, owner: str) -> str:
        return f"{self.namespace}:cancel:{owner}"

    @property
    def _jobs_key(self) -> str:
        return f"{self.namespace}:jobs"

    @property
    def _bytes_key(self) -> str:
        return f"{self.namespace}:bytes"

    @property
    def _finished_key(self) -> str:
        return f"{self.namespace}:finished"

    def _status_key(self, status: str) -> str:
        return f"{self.namespace}:status:{status}"

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and start the pub/sub listener. An unreachable Redis does not stop startup:
        the service starts degraded (async/stream/jobs endpoints answer 503, sync invocations
        work) and recovers by itself when Redis is reachable."""
        common: dict[str, Any] = {
            "socket_connect_timeout": self._timeout_s,
            "socket_timeout": self._timeout_s,
            "socket_keepalive": True,
            "decode_responses": False,
        }
        # One retry: a command on a pooled connection that a Redis restart closed reconnects.
        self._client = Redis.from_url(
            self.url, retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 1), **common
        )
        # No retries on the listener's connection: it reconnects itself, and must notice.
        self._pubsub_client = Redis.from_url(
            self.url, retry=Retry(NoBackoff(), 0), health_check_interval=15, **common
        )
        self._put_script = self._client.register_script(_PUT)
        self._delete_script = self._client.register_script(_DELETE)
        self._append_script = self._client.register_script(_APPEND)
        self._append_next_script = self._client.register_script(_APPEND_NEXT)
        self._listener = asyncio.create_task(self._listen(), name="zenml-serving-redis-listener")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._listening.wait(), self._timeout_s + 1.0)
        if self._listening.is_set():
            _log.info("job_backend_connected", backend="redis", url=self._shown_url)
        else:
            _log.error(
                "job_backend_degraded",
                backend="redis",
                url=self._shown_url,
                detail="starting degraded: async, stream and jobs endpoints answer 503 until "
                "Redis is reachable; sync invocations work; reconnecting in the background",
            )

    async def close(self) -> None:
        """Stop the listener and close the connections."""
        tasks = [t for t in (self._listener, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for client in (self._client, self._pubsub_client):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
        self._client = self._pubsub_client = None

    def describe(self) -> dict[str, object]:
        """Shared by every worker and replica that uses the same Redis, prefix and snapshot."""
        return {
            "kind": "redis",
            "shared": True,
            "connected": self._available and self._listening.is_set(),
            "url": self._shown_url,
            "namespace": self.namespace,
            "owner": self.owner,
        }

    # -- outage bookkeeping ------------------------------------------------------------------

    def _redis(self) -> Redis:
        if self._client is None:
            raise BackendUnavailableError("the Redis job backend is not started")
        return self._client

    def _unavailable(self, exc: BaseException) -> BackendUnavailableError:
        now = time.monotonic()
        if self._available:
            self._available = False
            self._down_since = self._last_outage_log = now
            _log.error(
                "job_backend_unavailable",
                backend="redis",
                url=self._shown_url,
                owner=self.owner,
                error=f"{type(exc).__name__}: {exc}",
                detail="async, stream and jobs endpoints answer 503; sync invocations work; "
                "events of running jobs wait in this process",
            )
        elif now - self._last_outage_log >= _OUTAGE_LOG_INTERVAL_S:
            self._last_outage_log = now
            _log.warning(
                "job_backend_still_unavailable",
                backend="redis",
                url=self._shown_url,
                owner=self.owner,
                down_s=round(now - self._down_since, 1),
            )
        return BackendUnavailableError(
            f"the job backend (Redis at {self._shown_url}) is unreachable"
        )

    def _reachable(self) -> None:
        if not self._available:
            self._available = True
            self._retry_listener.set()  # Redis answers again: the listener need not wait
            _log.info(
                "job_backend_recovered",
                backend="redis",
                url=self._shown_url,
                owner=self.owner,
                down_s=round(time.monotonic() - self._down_since, 1),
            )

    # -- job store ---------------------------------------------------------------------------

    async def put(self, record: JobRecord) -> list[str]:
        """Create or replace the record (a final record is never replaced); a new one that
        would pass a bound first evicts the oldest finished records. Returns their ids."""
        evicted: list[str] = []
        applied = await self._put(record)
        if applied < 0:
            evicted = await self._make_room(record)
            applied = await self._put(record)
            if applied == -1:
                raise JobStoreFullError(
                    "every kept job is unfinished and ZENML_SERVING_MAX_JOBS="
                    f"{self._max_jobs} are kept"
                )
            if applied == -2:
                raise JobStoreFullError(
                    "every kept job is unfinished and they take the bytes "
                    f"ZENML_SERVING_MAX_JOB_BYTES={self._max_bytes} allows"
                )
        if applied == 0:
            local = self._local.pop(record.job_id, None)
            if local is not None:
                # Another process recorded the job as final (it found this one unreachable
                # and cancelled it): stop running it here too.
                _log.warning("job_finished_elsewhere", job_id=record.job_id)
                self._spawn(self._cancel_locally(record.job_id))
        elif record.finished and self._max_bytes < 1 << 40:
            evicted += await self._drop_finished_over_bytes(keep=record.job_id)
        return evicted

    @staticmethod
    def _sizes(record: JobRecord) -> tuple[bytes, bytes, int]:
        """The record without outputs, the outputs ('' for none), the bytes the job counts."""
        outputs = b"" if record.outputs is None else _encoder.encode(record.outputs)
        body = _encoder.encode(msgspec.structs.replace(record, outputs=None))
        return body, outputs, len(body) + 2 * len(outputs)

    async def _put(self, record: JobRecord) -> int:
        """Write `record`: 1 written, 0 a final record was there already (left unchanged),
        -1 / -2 a new record over the count / byte bound (not written)."""
        local = record.owner == self.owner
        expiry = self._final_expiry_s if record.finished else self._orphan_expiry_s
        body, outputs, size = self._sizes(record)
        keys = [
            self._job_key(record.job_id),
            self._jobs_key,
            self._finished_key,
            *(self._status_key(s) for s in _STATUSES),
            self._bytes_key,
        ]
        args = [
            body,
            record.job_id,
            repr(record.created_at),
            record.status,
            "" if record.finished_at is None else repr(record.finished_at),
            expiry,
            self._changed_channel,
            outputs,
            size,
            self._max_jobs,
            self._max_bytes,
        ]
        self._redis()
        try:
            applied = int(await self._put_script(keys=keys, args=args))
        except _DOWN as exc:
            raise self._unavailable(exc) from exc
        self._reachable()
        if applied == 1 and local:
            if record.finished:
                self._local.pop(record.job_id, None)
            else:
                self._local[record.job_id] = record
        return applied

    async def _make_room(self, record: JobRecord) -> list[str]:
        """Evict the oldest finished records until `record` fits both bounds (or none is
        left to evict)."""
        size = self._sizes(record)[2]
        client = self._redis()
        evicted: list[str] = []
        try:
            while True:
                async with client.pipeline(transaction=False) as pipe:
                    pipe.zcard(self._jobs_key)
                    pipe.get(self._bytes_key)
                    count, total = await pipe.execute()
                excess = int(count) + 1 - self._max_jobs
                if excess <= 0 and int(total or 0) + size <= self._max_bytes:
                    return evicted
                oldest = await self._oldest_finished(max(excess, 1))
                if not oldest:
                    return evicted
                await self._delete(oldest)
                evicted += oldest
        except _DOWN as exc:
            raise self._unavailable(exc) from exc

    async def _drop_finished_over_bytes(self, keep: str) -> list[str]:
        """After a job finished with large outputs: evict the oldest other finished records
        while the total is over the byte bound."""
        client = self._redis()
        evicted: list[str] = []
        try:
            while int(await client.get(self._bytes_key) or 0) > self._max_bytes:
                oldest = [j for j in await self._oldest_finished(2) if j != keep][:1]
                if not oldest:
                    break
                await self._delete(oldest)
                evicted += oldest
        except _DOWN as exc:
            raise self._unavailable(exc) from exc
        return evicted

    async def get(self, job_id: str) -> JobRecord | None:
        """The record; for a job this process runs, its own copy if Redis lost it (a Redis
        restart without persistence): the next write of the job puts it back.

        An unfinished job of another process that no longer listens for cancellations (it
        died: a crash, `os._exit`, an OOM kill) is recorded `failed` here, with the final event,
        so that pollers and streams get a final state instead of `running` forever."""
        try:
            raw, outputs = await self._redis().hmget(self._job_key(job_id), ["d", "o"])
        except _DOWN as exc:
            raise self._unavailable(exc) from exc
        self._reachable()
        if raw is None:
            return self._local.get(job_id)
        record: JobRecord = _record_decoder.decode(raw)
        if outputs:
            record = msgspec.structs.replace(record, outputs=_outputs_decoder.decode(outputs))
        if not record.finished and record.owner != self.owner:
            return await self._settle_if_owner_gone(record)
        return record

    async def _settle_if_owner_gone(self, record: JobRecord) -> JobRecord:
        try:
            listeners = await self._redis().pubsub_numsub(self._cancel_channel(record.owner))
        except _DOWN as exc:
            raise self._unavailable(exc) from exc
        if listeners and listeners[0][1] > 0:
            return record
        settled = await self._record_gone(record, "job.failed", _gone(record.owner))
        return record if settled is None else settled

    async def query(
        self, *, status: str | None, limit: int, offset: int
    ) -> tuple[list[JobRecord], int]:
        """Newest first (by created_at), optionally one status, outputs not read; and how
        many match."""
        index = self._jobs_key if status is None else self._status_key(status)
        client = self._redis()
        try:
            async with client.pipeline(transaction=False) as pipe:
                pipe.zcard(index)
                pipe.zrevrange(index, offset, offset + limit - 1)
                total, ids = await pipe.execute()
            raws: list[bytes | None] = []
            if ids:
                async with client.pipeline(transaction=False) as pipe:
                    for job_id in ids:
                        pipe.hget(self._job_key(_text(job_id)), "d")
                    raws = await pipe.execute()
        except _DOWN as exc:
            raise self._unavailable(exc) from exc
        self._reachable()
        return [_record_decoder.decode(raw) for raw in raws if raw is not None], int(total)

    async def evict(self, now: float) -> list[str]:
        """Drop finished records (and their streams) past the TTL, records of jobs whose
        process died (unfinished past request timeout + TTL, already expired by Redis), then
        the oldest finished ones beyond the count and byte bounds."""
        client = self._redis()
        for job_id, local in list(self._local.items()):
            if local.created_at < now - self._orphan_age_s:
                del self._local[job_id]  # never finished (e.g. its first event was refused)
        try:
            expired = await self._ids_below(self._finished_key, now - self._ttl_s)
            for status in _UNFINISHED:
                expired += await self._ids_below(self._status_key(status), now - self._orphan_age_s)
            await self._delete(expired)
            while True:
                async with client.pipeline(transaction=False) as pipe:
                    pipe.zcard(self._jobs_key)
                    pipe.get(self._bytes_key)
                    count, total = await pipe.execute()
                excess = int(count) - self._max_jobs
                if excess <= 0 and int(total or 0) <= self._max_bytes:
                    break
                oldest = await self._oldest_finished(max(excess, 1))
                if not oldest:
                    break
                await self._delete(oldest)
                expired += oldest
        except _DOWN as exc:
            raise self._unavailable(exc) from exc
        self._reachable()
        return expired

    async def _oldest_finished(self, count: int) -> list[str]:
        scratch = f"{self.namespace}:scratch:{uuid.uuid4().hex}"
        async with self._redis().pipeline(transaction=True) as pipe:
            pipe.zinterstore(scratch, {self._jobs_key: 1, self._finished_key: 0})
            pipe.zrange(scratch, 0, count - 1)
            pipe.delete(scratch)
            _, ids, _ = await pipe.execute()
        return [_text(j) for j in ids]

    async def _ids_below(self, index: str, score: float) -> list[str]:
        ids = cast("list[bytes]", await self._redis().zrangebyscore(index, "-inf", f"({score!r}"))
        return [_text(j) for j in ids]

    async def _delete(self, job_ids: list[str]) -> None:
        if not job_ids:
            return
        keys = [
            self._jobs_key,
            self._finished_key,
            *(self._status_key(s) for s in _STATUSES),
            self._bytes_key,
        ]
        for job_id in job_ids:
            keys += [self._job_key(job_id), self._events_key(job_id)]
        await self._delete_script(keys=keys, args=job_ids)

    # -- cancellation ------------------------------------------------------------------------

    def on_cancel_request(self, callback: Callable[[str], Awaitable[None]]) -> None:
        """Register the process's cancellation handler."""
        self._cancel = callback

    async def request_cancel(self, job_id: str) -> None:
        """Cancel here if this process runs the job; else ask its process over pub/sub and
        wait (up to a few seconds) for it to record the outcome. If no process listens on
        that channel, the process is gone: the job is recorded as cancelled here."""
        record = await self.get(job_id)
        if record is None or record.finished:
            return
        if job_id in self._local:
            await self._cancel_locally(job_id)
            return
        if record.owner != self.owner:
            try:
                receivers = await self._redis().publish(self._cancel_channel(record.owner), job_id)
            except _DOWN as exc:
                raise self._unavailable(exc) from exc
            if receivers:
                await self._wait_until_finished(job_id)
                return
        await self._record_gone(record, "job.cancelled", _gone(record.owner))

    async def _record_gone(
        self, record: JobRecord, event_type: str, reason: str
    ) -> JobRecord | None:
        """Finish the record of a job whose process is gone with `event_type` (cancelled when
        someone asked, else failed), and append the final event. None if it finished
        meanwhile."""
        event = JobEvent(
            type=event_type,
            job_id=record.job_id,
            at=time.time(),
            error=JobError(type="OwnerGone", message=reason),
        )
        settled = apply_event(record, event)
        if await self._put(settled) != 1:
            return None  # it finished meanwhile
        try:
            await self._append_next_script(
                keys=[self._events_key(record.job_id)],
                args=[
                    self._max_events,
                    _encoder.encode(event),
                    self._final_expiry_s,
                    self._changed_channel,
                    record.job_id,
                ],
            )
        except _DOWN as exc:
            raise self._unavailable(exc) from exc
        _log.warning(
            "job_settled_for_gone_owner",
            job_id=record.job_id,
            owner=record.owner,
            status=settled.status,
        )
        return settled

    async def _on_cancel_message(self, job_id: str) -> None:
        if job_id in self._local:
            await self._cancel_locally(job_id)
            return
        # Addressed to this process's name but not running here: an earlier process with the
        # same host:pid (a restarted container) ran it and is gone.
        record = await self.get(job_id)
        if record is not None and not record.finished:
            await self._record_gone(record, "job.cancelled", _gone(record.owner))

    # -- event log ---------------------------------------------------------------------------

    async def append(self, event: JobEvent) -> JobEvent:
        """Store `event` with the job's next id (counted here: only the process that runs a
        job appends its events, so a retried append after a lost reply is recognised and not
        stored twice, and ids keep counting across a Redis restart)."""
        event_id = self._seq.get(event.job_id, 0) + 1
        event = msgspec.structs.replace(event, id=event_id)
        self._redis()
        try:
            # 0: this id is in the stream already (an earlier attempt whose reply was lost),
            # or another process recorded the job's end (see `_record_gone`).
            await self._append_script(
                keys=[self._events_key(event.job_id)],
                args=[
                    self._max_events,
                    f"0-{event_id}",
                    _encoder.encode(event),
                    self._final_expiry_s if event.final else self._orphan_expiry_s,
                    self._changed_channel,
                    event.job_id,
                ],
            )
        except _DOWN as exc:
            raise self._unavailable(exc) from exc
        self._reachable()
        if event.final:
            self._seq.pop(event.job_id, None)
        else:
            self._seq[event.job_id] = event_id
        return event

    async def subscribe(self, job_id: str, after: int = 0) -> _Subscription:
        """A cursor over the job's events after id `after`; KeyError if it has none."""
        try:
            exists = await self._redis().exists(self._events_key(job_id))
        except _DOWN as exc:
            raise self._unavailable(exc) from exc
        self._reachable()
        if not exists:
            raise KeyError(job_id)
        return _Subscription(self, job_id, after)

    async def forget(self, job_id: str) -> None:
        """Drop the job's history."""
        self._seq.pop(job_id, None)
        try:
            await self._redis().delete(self._events_key(job_id))
        except _DOWN as exc:
            raise self._unavailable(exc) from exc

    async def _read_after(self, job_id: str, cursor: int) -> list[JobEvent]:
        start = f"(0-{cursor}" if cursor > 0 else "-"
        try:
            entries = cast(
                "list[tuple[bytes, dict[bytes, bytes]]]",
                await self._redis().xrange(
                    self._events_key(job_id), min=start, max="+", count=_READ_BATCH
                ),
            )
        except _DOWN as exc:
            raise self._unavailable(exc) from exc
        self._reachable()
        return [
            msgspec.structs.replace(_event_decoder.decode(fields[b"d"]), id=_event_id(entry_id))
            for entry_id, fields in entries
        ]

    def _waiter(self, job_id: str) -> asyncio.Event:
        """The event set at the job's next `changed` notification (shared by its local
        subscribers; dropped when none holds it any more)."""
        waiter = self._waiters.get(job_id)
        if waiter is None:
            waiter = self._waiters[job_id] = asyncio.Event()
        return waiter

    def _wake_all(self) -> None:
        for job_id in list(self._waiters.keys()):
            self._wake(job_id)

    # -- the pub/sub listener ----------------------------------------------------------------

    async def _listen(self) -> None:
        """Follow `changed` and this process's cancel channel; reconnect with back-off."""
        assert self._pubsub_client is not None
        delay = 0.1
        while True:
            pubsub = self._pubsub_client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._changed_channel, self._cancel_channel(self.owner))
                self._listening.set()
                self._reachable()
                delay = 0.1
                self._wake_all()  # anything published while we were away was missed
                self._spawn(self._reconcile())
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is not None and message.get("type") == "message":
                        self._dispatch(_text(message["channel"]), _text(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._listening.clear()
                self._unavailable(exc)
                self._wake_all()
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]
            self._retry_listener.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._retry_listener.wait(), delay)
            delay = min(delay * 2, 2.0)

    def _dispatch(self, channel: str, job_id: str) -> None:
        if channel == self._changed_channel:
            self._wake(job_id)
        else:
            self._spawn(self._on_cancel_message(job_id))

    async def _reconcile(self) -> None:
        """After (re)connecting: a local job whose record another process finished (a
        cancellation while this process was unreachable) is cancelled here; a local job whose
        record Redis lost (restart without persistence) is written back."""
        for job_id, local in list(self._local.items()):
            record = await self.get(job_id)
            if record is local:
                await self._put(local)
            elif record is not None and record.finished:
                self._local.pop(job_id, None)
                await self._cancel_locally(job_id)
