"""ServingExecutionManager: admission, the concurrency limit, timeouts, async jobs, draining.

Every invocation, whatever its mode, goes through `_run`: take a slot (or wait in line),
run the engine on a worker thread, and wait for the result, a deadline or a stop request,
whichever comes first. A stopped or timed-out invocation leaves its step running on the
thread (Python cannot kill it); the slot stays held until the thread returns, the token makes
sure no later step starts, and the count of such orphaned executions is public.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import functools
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar

import msgspec
import structlog

from zenml_serving.engine.cancellation import (
    CancellationToken,
    InvocationCancelledError,
    InvocationTimeoutError,
)
from zenml_serving.engine.engine import InvocationResult, StepFailedError, StepRecord
from zenml_serving.engine.observer import CompositeObserver, ExecutionObserver, StepOutcome
from zenml_serving.execution.backend import BackendUnavailableError, JobStoreFullError
from zenml_serving.execution.backends import process_owner
from zenml_serving.execution.invocation import (
    Invocation,
    InvocationListener,
    InvocationOutcome,
    Mode,
)
from zenml_serving.execution.outcomes import counted_as
from zenml_serving.execution.outputs import to_json_builtins
from zenml_serving.execution.records import (
    CHUNK_EVENT,
    JobError,
    JobEvent,
    JobRecord,
    StepProgress,
    apply_event,
)
from zenml_serving.execution.signals import StopSignal, race
from zenml_serving.execution.slots import ExecutionSlots, OverloadedError, Slot, give_up
from zenml_serving.execution.workers import WorkerThreads

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence

    from zenml_serving.deployment.model import ServedStep
    from zenml_serving.engine.engine import DirectExecutionEngine
    from zenml_serving.execution.backend import EventLog, JobStore

__all__ = [
    "ExecutionStats",
    "InvocationAbortedError",
    "JobsFullError",
    "ServingExecutionManager",
    "ShuttingDownError",
]

_log = structlog.stdlib.get_logger(__name__)
_encoder = msgspec.json.Encoder()

T = TypeVar("T")


class ShuttingDownError(Exception):
    """The service is draining and takes no new work."""


class JobsFullError(OverloadedError):
    """No room for another async job (answered 429 like every overload): the job store is at
    ZENML_SERVING_MAX_JOBS or ZENML_SERVING_MAX_JOB_BYTES and every kept job is unfinished."""

    def __init__(self, retry_after_s: int, reason: str) -> None:
        super().__init__(retry_after_s)
        self.reason = reason


@dataclass
class ExecutionStats:
    """Counters for /status (this process only); /metrics counts the same outcomes."""

    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    timed_out: int = 0
    rejected: int = 0
    """Refused at admission: overloaded (429) or shutting down (503)."""

    def count(self, outcome: str) -> None:
        """Count `outcome` (see `counted_as`)."""
        field = counted_as(outcome)
        setattr(self, field, getattr(self, field) + 1)


class InvocationAbortedError(Exception):
    """SystemExit or KeyboardInterrupt escaped the engine on the worker thread (step code's
    own are step failures, named by the engine; this is the guard for anything else, a hook or
    a listener): the invocation failed; the serving process does not exit."""


@dataclass
class _ActiveJob:
    stop: StopSignal = field(default_factory=StopSignal)
    task: asyncio.Task[None] | None = None


class ServingExecutionManager:
    """Runs invocations under the concurrency limit and keeps async jobs and their events."""

    def __init__(
        self,
        engine: DirectExecutionEngine,
        *,
        jobs: JobStore,
        events: EventLog,
        max_concurrency: int,
        max_queue_size: int,
        request_timeout_s: float,
        shutdown_grace_s: float,
        listeners: Sequence[InvocationListener] = (),
        on_outcome: Callable[[Invocation, str], None] | None = None,
        maintenance_interval_s: float = 30.0,
        max_job_bytes: int | None = None,
    ) -> None:
        """`on_outcome(invocation, outcome)` is told, on the event loop, how every invocation
        ended for its client: completed, failed, cancelled, timed_out, or refused at
        admission (overloaded, shutting_down). Metrics count it. An async job whose outputs
        take more than `max_job_bytes` as JSON ends `failed` (OutputsTooLarge): the job store
        could not keep them within its byte bound."""
        self.engine = engine
        self.jobs = jobs
        self.events = events
        self.request_timeout_s = request_timeout_s
        self.shutdown_grace_s = shutdown_grace_s
        self.slots = ExecutionSlots(max_concurrency, max_queue_size)
        self.stats = ExecutionStats()
        self.owner = process_owner()
        self._listeners = tuple(listeners)
        self._on_outcome = on_outcome
        self._maintenance_interval_s = maintenance_interval_s
        self._max_job_bytes = max_job_bytes
        self._workers: WorkerThreads | None = None
        self._active: dict[str, _ActiveJob] = {}
        self._running_sync: set[StopSignal] = set()
        self._job_states: dict[str, str] = {}
        """This process's kept jobs by id: their status, kept as events apply (not queried)."""
        self._job_counts: dict[str, int] = {}
        self._maintenance: asyncio.Task[None] | None = None
        self._drain_timer: asyncio.TimerHandle | None = None
        self._accepting = False
        self._stopped = asyncio.Event()
        """Set once stop() gave up waiting: pending job events are no longer retried."""

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the worker threads and start background maintenance."""
        self._workers = WorkerThreads(self.slots.limit)
        self.jobs.on_cancel_request(self._cancel_local)
        await self.jobs.start()
        self._maintenance = asyncio.create_task(self._maintain(), name="zenml-serving-maintenance")
        self._accepting = True

    def begin_drain(self) -> None:
        """Stop admitting work now: queued invocations are answered at once (503 / cancelled),
        in-flight ones get the grace period, after which they are stopped too (idempotent)."""
        if self._drain_timer is not None:
            return
        self._accepting = False
        shed = self.slots.close(ShuttingDownError("the service is shutting down"))
        _log.info(
            "drain_started",
            queued_shed=shed,
            in_flight=self.slots.in_use,
            grace_s=self.shutdown_grace_s,
        )
        self._drain_timer = asyncio.get_running_loop().call_later(
            self.shutdown_grace_s, self._stop_everything
        )

    def _stop_everything(self) -> None:
        for job in list(self._active.values()):
            job.stop.set()
        for stop in list(self._running_sync):
            stop.set()

    async def stop(self) -> None:
        """Drain (see begin_drain), wait for in-flight work up to the grace period, clean up."""
        self.begin_drain()
        pending = [j.task for j in self._active.values() if j.task is not None]
        if pending:
            await asyncio.wait(pending, timeout=self.shutdown_grace_s + 5.0)
        if self._drain_timer is not None:
            self._drain_timer.cancel()
        self._stop_everything()
        self._stopped.set()
        if pending:
            await asyncio.wait(pending, timeout=5.0)
        if self._maintenance is not None:
            self._maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintenance
        await self.jobs.close()
        if self._workers is not None:
            self._workers.close()
        _log.info("drain_finished", orphaned=self.slots.orphaned)

    @property
    def accepting(self) -> bool:
        """Whether new invocations are admitted."""
        return self._accepting

    # -- sync ------------------------------------------------------------------------------

    async def invoke(
        self, invocation: Invocation, stop: StopSignal | None = None
    ) -> InvocationResult:
        """Run `invocation` and return its result.

        Raises OverloadedError (answer 429), ShuttingDownError (503), StepFailedError,
        InvocationTimeoutError or InvocationCancelledError (when `stop` is set, e.g. because
        the client went away).
        """
        reservation = self._reserve(invocation)
        stop = stop or StopSignal()
        self._running_sync.add(stop)
        try:
            token = CancellationToken(invocation.received + self.request_timeout_s)
            return await self._run(invocation, reservation, token, stop, observer=None)
        finally:
            self._running_sync.discard(stop)

    # -- async jobs ------------------------------------------------------------------------

    async def submit(self, invocation: Invocation) -> JobRecord:
        """Queue `invocation` as a job and return its record (status `queued`)."""
        reservation = self._reserve(invocation)
        record = JobRecord(
            job_id=invocation.id,
            created_at=invocation.submitted_at,
            steps=[StepProgress(name=s.name) for s in self.engine.pipeline.steps],
            trace_id=invocation.attributes.get("trace_id"),
            owner=self.owner,
        )
        try:
            await self._forget_events_of(await self.jobs.put(record))
            self._set_job_state(record.job_id, record.status)
            await self.events.append(
                JobEvent(type="job.queued", job_id=invocation.id, at=time.time())
            )
        except JobStoreFullError as exc:
            give_up(reservation)
            self._tally(invocation, "overloaded")
            raise JobsFullError(self.slots.retry_after_s(), str(exc)) from None
        except BaseException:
            give_up(reservation)
            raise
        active = _ActiveJob()
        self._active[invocation.id] = active
        active.task = asyncio.create_task(
            self._run_job(invocation, reservation, active), name=f"job-{invocation.id}"
        )
        return record

    async def cancel(self, job_id: str) -> JobRecord | None:
        """Ask for `job_id` to stop; return its record after the request (None if unknown)."""
        record = await self.jobs.get(job_id)
        if record is None or record.finished:
            return record
        await self.jobs.request_cancel(job_id)
        return await self.jobs.get(job_id)

    async def _cancel_local(self, job_id: str) -> None:
        active = self._active.get(job_id)
        if active is None:
            return
        active.stop.set()
        if active.task is not None:
            await asyncio.wait([active.task], timeout=5.0)

    async def _run_job(
        self,
        invocation: Invocation,
        reservation: Slot | asyncio.Future[Slot],
        active: _ActiveJob,
    ) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[JobEvent | None] = asyncio.Queue()
        observer = _JobEventObserver(invocation.id, loop, queue)
        pump = asyncio.create_task(self._pump(queue, observer.chunk_taken))
        token = CancellationToken(invocation.received + self.request_timeout_s)
        final: JobEvent
        try:
            result = await self._run(
                invocation,
                reservation,
                token,
                active.stop,
                observer=observer,
                on_start=lambda: queue.put_nowait(
                    JobEvent(type="job.started", job_id=invocation.id, at=time.time())
                ),
            )
            final = self._completed_event(invocation.id, result)
        except StepFailedError as exc:
            final = JobEvent(
                type="job.failed", job_id=invocation.id, at=time.time(), error=_job_error(exc)
            )
        except InvocationTimeoutError as exc:
            final = JobEvent(
                type="job.timed_out", job_id=invocation.id, at=time.time(), error=_job_error(exc)
            )
        except (InvocationCancelledError, ShuttingDownError) as exc:
            final = JobEvent(
                type="job.cancelled", job_id=invocation.id, at=time.time(), error=_job_error(exc)
            )
        except Exception as exc:
            _log.exception("job_crashed", job_id=invocation.id)
            final = JobEvent(
                type="job.failed", job_id=invocation.id, at=time.time(), error=_job_error(exc)
            )
        finally:
            observer.close()
        queue.put_nowait(final)
        queue.put_nowait(None)
        await pump
        self._active.pop(invocation.id, None)

    async def _pump(
        self, queue: asyncio.Queue[JobEvent | None], chunk_taken: Callable[[], None]
    ) -> None:
        """Apply a job's events in order: the event log first, then the job record.

        While the backend is unavailable (Redis down), the events wait in `queue`, in order,
        and each write is retried with back-off until the backend is back; only when the
        service stops before that are they dropped, and then counted in the log.
        """
        while (event := await queue.get()) is not None:
            if event.type == CHUNK_EVENT:
                chunk_taken()
            try:
                stored = await self._until_stored(functools.partial(self.events.append, event))
                applied = stored is not None and (
                    stored.type == CHUNK_EVENT  # a chunk changes nothing in the record
                    or await self._until_stored(functools.partial(self._apply_to_record, stored))
                )
            except Exception:
                _log.exception("job_event_lost", job_id=event.job_id, event_type=event.type)
                continue
            if not applied:
                _log.error(
                    "job_events_dropped",
                    job_id=event.job_id,
                    count=1 + sum(1 for e in _drain(queue) if e is not None),
                    reason="the job backend stayed unavailable until shutdown",
                )
                return

    def _completed_event(self, job_id: str, result: InvocationResult) -> JobEvent:
        if self._max_job_bytes is not None:
            size = len(_encoder.encode(result.outputs))
            if size > self._max_job_bytes:
                return JobEvent(
                    type="job.failed",
                    job_id=job_id,
                    at=time.time(),
                    error=JobError(
                        type="OutputsTooLarge",
                        message=f"the outputs take {size} bytes as JSON, more than "
                        f"ZENML_SERVING_MAX_JOB_BYTES={self._max_job_bytes} lets a job keep; "
                        "invoke in sync mode, or raise the bound",
                    ),
                )
        return JobEvent(
            type="job.completed",
            job_id=job_id,
            at=time.time(),
            outputs=result.outputs,
            duration_ms=result.duration_s * 1000,
        )

    async def _apply_to_record(self, event: JobEvent) -> bool:
        record = await self.jobs.get(event.job_id)
        if record is not None:
            updated = apply_event(record, event)
            await self._forget_events_of(await self.jobs.put(updated))
            self._set_job_state(updated.job_id, updated.status)
        return True

    async def _forget_events_of(self, evicted: list[str]) -> None:
        for job_id in evicted:
            self._drop_job_state(job_id)
            await self.events.forget(job_id)

    # -- job counts ------------------------------------------------------------------------

    def job_counts(self) -> Mapping[str, int]:
        """This process's kept jobs by status (queued, running, completed, ...), as kept
        while its jobs move on: reading them costs nothing whatever the store holds."""
        return self._job_counts

    def _set_job_state(self, job_id: str, status: str) -> None:
        # Only the process that runs a job writes its record: every job here is ours.
        self._drop_job_state(job_id)
        self._job_states[job_id] = status
        self._job_counts[status] = self._job_counts.get(status, 0) + 1

    def _drop_job_state(self, job_id: str) -> None:
        status = self._job_states.pop(job_id, None)
        if status is not None:
            self._job_counts[status] -= 1

    async def _recount_jobs(self) -> None:
        """Forget finished jobs the store no longer keeps: with a store shared by several
        processes, another one's put or eviction may drop ours (a maintenance round)."""
        if not self.jobs.describe().get("shared", True):
            return  # only this process evicts, and it sees every eviction
        kept_here = {j for j, status in self._job_states.items() if status in _FINISHED}
        if not kept_here:
            return
        records, _ = await self.jobs.query(status=None, limit=10**9, offset=0)
        for job_id in kept_here - {r.job_id for r in records}:
            if self._job_states.get(job_id) in _FINISHED:
                self._drop_job_state(job_id)

    async def _until_stored(self, write: Callable[[], Awaitable[T]]) -> T | None:
        """`write()`, retried while the backend is unavailable; None once stopping."""
        delay = 0.05
        while True:
            try:
                return await write()
            except BackendUnavailableError:
                if self._stopped.is_set():
                    return None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), delay)
            delay = min(delay * 2, 2.0)

    # -- the one execution path ------------------------------------------------------------

    def refuse_when_full(self, mode: Mode) -> None:
        """Raise OverloadedError (429), counted as every refusal, when nothing could be admitted
        now: the invoke routes call it before the body is read and validated, so that a request
        shed under overload costs as little as possible. `invoke`/`submit` still admit."""
        if self._accepting and self.slots.full:
            # Refused before it had an id or parameters; the outcome hook counts it by mode.
            self._tally(Invocation(id="", parameters={}, mode=mode), "overloaded")
            raise OverloadedError(self.slots.retry_after_s())

    def _reserve(self, invocation: Invocation) -> Slot | asyncio.Future[Slot]:
        if not self._accepting:
            self._tally(invocation, "shutting_down")
            raise ShuttingDownError("the service is shutting down")
        try:
            return self.slots.reserve()
        except OverloadedError:
            self._tally(invocation, "overloaded")
            raise

    def _tally(self, invocation: Invocation, outcome: str) -> None:
        """Count how an invocation ended for its client (stats, then the outcome hook)."""
        self.stats.count(outcome)
        if self._on_outcome is not None:
            try:
                self._on_outcome(invocation, outcome)
            except Exception:
                _log.exception("outcome_hook_failed", outcome=outcome)

    async def _run(
        self,
        invocation: Invocation,
        reservation: Slot | asyncio.Future[Slot],
        token: CancellationToken,
        stop: StopSignal,
        *,
        observer: ExecutionObserver | None,
        on_start: Callable[[], None] | None = None,
    ) -> InvocationResult:
        if isinstance(reservation, Slot):
            slot = reservation
        else:
            slot = await self._wait_for_slot(invocation, reservation, token, stop)
        if on_start is not None:
            on_start()
        return await self._execute(invocation, slot, token, stop, observer)

    async def _wait_for_slot(
        self,
        invocation: Invocation,
        reservation: asyncio.Future[Slot],
        token: CancellationToken,
        stop: StopSignal,
    ) -> Slot:
        try:
            outcome = await race(reservation, stop, self._until(token))  # type: ignore[arg-type]
        except BaseException:
            give_up(reservation)
            raise
        if outcome == "done" and not reservation.cancelled():
            if isinstance(reservation.exception(), ShuttingDownError):
                self._tally(invocation, "shutting_down")  # shed from the line by draining
            return reservation.result()  # may raise ShuttingDownError
        give_up(reservation)
        if outcome == "stop":
            self._tally(invocation, "cancelled")
            raise InvocationCancelledError("cancelled while queued", None)
        self._tally(invocation, "timed_out")
        raise InvocationTimeoutError("timed out while queued for a free slot", None)

    async def _execute(
        self,
        invocation: Invocation,
        slot: Slot,
        token: CancellationToken,
        stop: StopSignal,
        observer: ExecutionObserver | None,
    ) -> InvocationResult:
        assert self._workers is not None, "start() the manager first"
        started = time.perf_counter()
        try:
            future = self._workers.submit(
                functools.partial(
                    contextvars.copy_context().run,
                    self._run_in_thread,
                    invocation,
                    token,
                    observer,
                )
            )
        except BaseException:
            slot.release()
            raise

        def finished(done: asyncio.Future[InvocationResult]) -> None:
            slot.release()
            self.slots.record_duration(time.perf_counter() - started)
            if not done.cancelled():
                done.exception()  # an orphaned run's error is logged by the thread, not lost

        future.add_done_callback(finished)
        outcome = await race(future, stop, self._until(token))
        if outcome == "done":
            try:
                result: InvocationResult = future.result()
            except InvocationTimeoutError:
                self._tally(invocation, "timed_out")
                raise
            except (InvocationCancelledError, ShuttingDownError):
                self._tally(invocation, "cancelled")
                raise
            except Exception:
                self._tally(invocation, "failed")
                raise
            self._tally(invocation, "completed")
            return result
        slot.orphan()
        if outcome == "stop":
            token.cancel("cancelled")
            self._tally(invocation, "cancelled")
            raise InvocationCancelledError("cancelled while running", None)
        token.cancel("deadline exceeded", timed_out=True)
        self._tally(invocation, "timed_out")
        raise InvocationTimeoutError(f"exceeded {self.request_timeout_s:g} s", None)

    @staticmethod
    def _until(token: CancellationToken) -> float | None:
        if token.deadline is None:
            return None
        return max(0.0, token.deadline - time.monotonic())

    def _run_in_thread(
        self,
        invocation: Invocation,
        token: CancellationToken,
        observer: ExecutionObserver | None,
    ) -> InvocationResult:
        observers: list[ExecutionObserver] = []
        for listener in self._listeners:
            extra = listener.invocation_started(invocation)
            if extra is not None:
                observers.append(extra)
        if observer is not None:
            observers.append(observer)
        composite = CompositeObserver(observers) if observers else None
        records: list[StepRecord] = []
        started = time.perf_counter()
        outcome: InvocationOutcome | None = None
        try:
            result = self.engine.run(
                invocation.parameters,
                token=token,
                observer=composite,
                records=records,
                invocation_id=invocation.id,
                recorded=invocation.capture is not None and invocation.capture.record_run,
            )
            result = InvocationResult(
                outputs=to_json_builtins(result.outputs),
                steps=result.steps,
                duration_s=result.duration_s,
            )
            outcome = InvocationOutcome(
                "completed", result.duration_s, result=result, steps=records
            )
            return result
        except StepFailedError as exc:
            outcome = InvocationOutcome(
                "failed",
                time.perf_counter() - started,
                error=exc,
                failed_step=exc.step,
                steps=records,
            )
            _log.warning(
                "step_failed",
                invocation_id=invocation.id,
                step=exc.step,
                error_type=type(exc.error).__name__,
                exc_info=exc.error,
            )
            raise
        except InvocationTimeoutError as exc:
            outcome = InvocationOutcome(
                "timed_out", time.perf_counter() - started, error=exc, steps=records
            )
            raise
        except InvocationCancelledError as exc:
            outcome = InvocationOutcome(
                "cancelled", time.perf_counter() - started, error=exc, steps=records
            )
            raise
        except Exception as exc:
            outcome = InvocationOutcome(
                "failed", time.perf_counter() - started, error=exc, steps=records
            )
            _log.exception("invocation_crashed", invocation_id=invocation.id)
            raise
        except BaseException as exc:
            # SystemExit / KeyboardInterrupt: on a worker thread it would end nothing but this
            # invocation, and on the event loop it would stop the server. A failure, told.
            outcome = InvocationOutcome(
                "failed", time.perf_counter() - started, error=exc, steps=records
            )
            _log.error(
                "invocation_aborted", invocation_id=invocation.id, error_type=type(exc).__name__
            )
            raise InvocationAbortedError(
                f"{type(exc).__name__}({exc}) escaped the pipeline's execution; the invocation "
                "failed"
            ) from exc
        finally:
            if outcome is not None:  # set on every path above, unless logging itself raised
                for listener in self._listeners:
                    try:
                        listener.invocation_finished(invocation, outcome)
                    except Exception:
                        _log.exception("listener_failed", listener=repr(listener))

    # -- maintenance -----------------------------------------------------------------------

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(self._maintenance_interval_s)
            await self.evict_now()

    async def evict_now(self) -> int:
        """Evict expired job records and their event histories; return how many went."""
        try:
            evicted = await self.jobs.evict(time.time())
            await self._forget_events_of(evicted)
            await self._recount_jobs()
            return len(evicted)
        except BackendUnavailableError:
            return 0  # the backend logs its outage itself; the next round catches up
        except Exception:
            _log.exception("job_eviction_failed")
            return 0


MAX_CHUNK_BACKLOG = 10_000
"""Chunks of one job waiting to be written to the event log past which new ones are dropped."""
MAX_CHUNK_BACKLOG_BYTES = 8 * 1024 * 1024
"""The same bound in JSON bytes."""

_FINISHED: Final = frozenset({"completed", "failed", "cancelled", "timed_out"})


class _JobEventObserver:
    """Turns engine callbacks (worker thread) into job events on the event loop, in order."""

    def __init__(
        self, job_id: str, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[JobEvent | None]
    ) -> None:
        self._job_id = job_id
        self._loop = loop
        self._queue = queue
        self._closed = False
        self._chunk_sizes: collections.deque[int] = collections.deque()
        """JSON sizes of the chunks not yet taken to be written, oldest first."""
        self._chunk_bytes = 0
        self._lock = threading.Lock()

    def close(self) -> None:
        """Drop anything an orphaned step reports after the job ended."""
        self._closed = True

    def step_chunk(self, step: str, seq: int, value: Any, size: int) -> bool:
        """A chunk the step emitted (`size` bytes as JSON), as a `step.chunk` event; dropped
        (False) when the job's chunks not yet written would pass MAX_CHUNK_BACKLOG or
        MAX_CHUNK_BACKLOG_BYTES (the step is never slowed)."""
        event = JobEvent(
            type=CHUNK_EVENT, job_id=self._job_id, at=time.time(), step=step, seq=seq, chunk=value
        )
        with self._lock:
            if (
                self._closed
                or len(self._chunk_sizes) >= MAX_CHUNK_BACKLOG
                or self._chunk_bytes + size > MAX_CHUNK_BACKLOG_BYTES
            ):
                return False
            self._chunk_sizes.append(size)
            self._chunk_bytes += size
        self._loop.call_soon_threadsafe(self._put, event)
        return True

    def chunk_taken(self) -> None:
        """The oldest chunk left the queue to be written (it no longer counts as backlog)."""
        with self._lock:
            if self._chunk_sizes:
                self._chunk_bytes -= self._chunk_sizes.popleft()

    def _emit(self, event: JobEvent) -> None:
        if not self._closed:
            self._loop.call_soon_threadsafe(self._put, event)

    def _put(self, event: JobEvent) -> None:
        if not self._closed:
            self._queue.put_nowait(event)

    def step_started(self, step: ServedStep, inputs: Mapping[str, Any]) -> None:  # noqa: ARG002
        self._emit(
            JobEvent(type="step.started", job_id=self._job_id, at=time.time(), step=step.name)
        )

    def step_finished(self, step: ServedStep, outcome: StepOutcome) -> None:
        self._emit(
            JobEvent(
                type=f"step.{outcome.status}",
                job_id=self._job_id,
                at=time.time(),
                step=step.name,
                duration_ms=outcome.duration_s * 1000,
                attempts=outcome.attempts,
                error=None
                if outcome.error is None
                else JobError(
                    type=type(outcome.error).__name__, message=str(outcome.error), step=step.name
                ),
            )
        )


def _drain(queue: asyncio.Queue[JobEvent | None]) -> Iterator[JobEvent | None]:
    while not queue.empty():
        yield queue.get_nowait()


def _job_error(exc: BaseException) -> JobError:
    if isinstance(exc, StepFailedError):
        return JobError(type=type(exc.error).__name__, message=str(exc.error), step=exc.step)
    step = getattr(exc, "next_step", None)
    return JobError(type=type(exc).__name__, message=str(exc), step=step)
