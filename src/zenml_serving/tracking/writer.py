"""TrackingWriter: a background thread that writes run records, with a bounded queue.

The request path only ever enqueues (`submit`, never blocking). When the store is slow or
down, records wait in the queue; beyond its bound they are dropped, counted, and logged at
most once per interval with the count, never silently. A failed write is retried a few times
with back-off (the recorder is idempotent per invocation id), then dropped and counted. On
shutdown the queue is flushed within a grace period; what is left is counted as dropped.

Two ways to write:
- `write_batch` (the default in the app): the thread takes up to `batch_size` queued items
  at once and hands them to a writer process (`process.py`), which writes them off this
  process's GIL. An item the store could not be reached for waits and is tried again, for
  as long as it takes (new items queue meanwhile, and past the bound are dropped); a batch
  held by a writer process that died is counted `lost`, never sent again.
- `write` (one item at a time, in this process): its Python work (ZenML's store client)
  competes with the request path for the GIL: unthrottled, writing a run per invocation
  made a 1 ms pipeline 4x slower (measured, BENCHMARKS.md). `duty` bounds the share of time
  the writer may spend writing: after a write that took t seconds it rests t * (1/duty - 1).
  No rest while flushing at shutdown.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from zenml_serving.tracking.process import RecordFailed

__all__ = ["TrackingStats", "TrackingWriter"]

_log = structlog.stdlib.get_logger(__name__)
_STOP = object()


@dataclass
class TrackingStats:
    """Counters for /status and /metrics."""

    written: int = 0
    dropped_full: int = 0
    dropped_failed: int = 0
    dropped_shutdown: int = 0
    dropped_lost: int = 0
    """Held by a writer process that died."""

    @property
    def dropped(self) -> int:
        """All records that never reached the store."""
        return self.dropped_full + self.dropped_failed + self.dropped_shutdown + self.dropped_lost


class TrackingWriter:
    """Owns one thread that turns queued items into store writes with `write(item)`."""

    def __init__(
        self,
        write: Callable[[Any], object] | None = None,
        *,
        write_batch: Callable[[list[Any]], Sequence[RecordFailed | None]] | None = None,
        batch_size: int = 256,
        max_retry_delay_s: float = 5.0,
        max_queue: int = 1000,
        retries: int = 3,
        retry_delay_s: float = 0.5,
        log_interval_s: float = 60.0,
        duty: float = 1.0,
        on_drop: Callable[[str, int], None] | None = None,
        logger: Any = None,
        on_start: Callable[[], object] | None = None,
        on_stop: Callable[[], object] | None = None,
    ) -> None:
        """`on_start` / `on_stop` open and close what `write_batch` writes to (the process)."""
        if not 0.0 < duty <= 1.0:
            raise ValueError(f"duty must be in (0, 1], not {duty}")
        if (write is None) == (write_batch is None):
            raise ValueError("give exactly one of write and write_batch")
        self._write = write
        self._write_batch = write_batch
        self._batch_size = batch_size if write_batch is not None else 1
        self._max_retry_delay_s = max_retry_delay_s
        self._rest_per_busy = 1.0 / duty - 1.0
        # The bound counts records held, queued or in the batch being written: a batch taken
        # off the queue must not make room for more while the store is away.
        self._queue: queue.Queue[Any] = queue.Queue()
        self._max_held = max_queue
        self._retries = retries
        self._retry_delay_s = retry_delay_s
        self._log_interval_s = log_interval_s
        self._on_drop = on_drop
        self._on_start = on_start
        self._on_stop = on_stop
        self._log = logger if logger is not None else _log
        self._last_drop_log = float("-inf")
        self._unlogged_drops = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._give_up = threading.Event()
        self.stats = TrackingStats()

    @property
    def depth(self) -> int:
        """Records waiting to be written (queued, or in the batch being written)."""
        return self._queue.unfinished_tasks

    def start(self) -> None:
        """Start the writer thread (and what it writes to)."""
        if self._on_start is not None:
            self._on_start()
        self._thread = threading.Thread(
            target=self._run, name="zenml-serving-tracking", daemon=True
        )
        self._thread.start()

    def submit(self, item: Any) -> bool:
        """Queue `item`; False (and counted) if the queue is full or the writer stopped."""
        if self._stopping.is_set():
            self._dropped("shutdown")
            return False
        with self._lock:
            full = self._queue.unfinished_tasks >= self._max_held
            if not full:
                self._queue.put_nowait(item)
        if full:
            self._dropped("full")
            return False
        return True

    def stop(self, grace_s: float) -> None:
        """Flush for up to `grace_s` seconds, then give up on what is left (counted)."""
        self._stopping.set()
        if self._thread is None:
            return
        deadline = time.monotonic() + grace_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        self._give_up.set()
        left = 0
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
            self._queue.task_done()
            left += 1
        for _ in range(left):
            self._dropped("shutdown")
        self._queue.put(_STOP)
        # A batch mode writer is cut short by `on_stop` (its process is ended) when still busy.
        extra_s = 0.0 if self._on_stop is not None else 5.0
        self._thread.join(timeout=max(0.0, deadline - time.monotonic()) + extra_s)
        if self._on_stop is not None:
            self._on_stop()
            self._thread.join(timeout=5.0)
        self._flush_drop_log(force=True)

    def _run(self) -> None:
        while True:
            items = [self._queue.get()]
            while len(items) < self._batch_size and items[-1] is not _STOP:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = items[-1] is _STOP
            if stop:
                items.pop()
            try:
                if self._write_batch is not None:
                    if items:
                        self._write_batch_until_done(items)
                elif items:
                    started = time.monotonic()
                    self._write_with_retries(items[0])
                    if self._rest_per_busy and not self._stopping.is_set():
                        self._stopping.wait((time.monotonic() - started) * self._rest_per_busy)
            finally:
                for _ in range(len(items) + stop):
                    self._queue.task_done()
            if stop:
                return

    def _write_batch_until_done(self, items: list[Any]) -> None:  # noqa: PLR0912
        """Write `items`; retry what failed (without limit while the store is unreachable)."""
        from zenml_serving.tracking.process import RecordFailed, WriterLostError

        assert self._write_batch is not None
        pending = items
        refused: dict[int, int] = {}  # id(item) -> refusals so far
        delay = self._retry_delay_s
        while pending:
            try:
                outcomes: list[RecordFailed | None] = list(self._write_batch(pending))
            except WriterLostError as exc:
                # Cut short at shutdown (grace over), or died: either way never sent again.
                reason = "shutdown" if self._give_up.is_set() else "lost"
                self._log.warning("tracking_writer_lost", records=len(pending), error=str(exc))
                for _ in pending:
                    self._dropped(reason)
                return
            except Exception as exc:  # the writer itself failed: all of them may be retried
                self._log.warning(
                    "tracking_write_failed",
                    error=f"{type(exc).__name__}: {exc}",
                    records=len(pending),
                )
                outcomes = [RecordFailed(f"{type(exc).__name__}: {exc}")] * len(pending)
            retry: list[Any] = []
            unreachable = ""
            for item, outcome in zip(pending, outcomes, strict=True):
                if outcome is None:
                    with self._lock:
                        self.stats.written += 1
                    continue
                if outcome.unavailable:
                    unreachable = outcome.error
                    retry.append(item)
                    continue
                refused[id(item)] = refused.get(id(item), 0) + 1
                if refused[id(item)] >= self._retries or self._give_up.is_set():
                    self._log.warning(
                        "tracking_write_failed", attempts=refused[id(item)], error=outcome.error
                    )
                    self._dropped("failed")
                else:
                    retry.append(item)
            if retry and self._give_up.is_set():
                for _ in retry:
                    self._dropped("shutdown" if unreachable else "failed")
                return
            if retry:
                if unreachable:
                    self._log.info(
                        "tracking_store_unreachable", waiting=len(retry), error=unreachable
                    )
                self._give_up.wait(delay)
                delay = min(delay * 2, self._max_retry_delay_s)
            pending = retry

    def _write_with_retries(self, item: Any) -> None:
        assert self._write is not None
        for attempt in range(1, self._retries + 1):
            try:
                self._write(item)
            except Exception as exc:
                if attempt == self._retries or self._give_up.is_set():
                    self._log.warning(
                        "tracking_write_failed",
                        attempts=attempt,
                        error=f"{type(exc).__name__}: {exc}",
                    )
                    self._dropped("failed")
                    return
                self._give_up.wait(self._retry_delay_s * 2 ** (attempt - 1))
            else:
                with self._lock:
                    self.stats.written += 1
                return

    def _dropped(self, reason: str) -> None:
        with self._lock:
            setattr(self.stats, f"dropped_{reason}", getattr(self.stats, f"dropped_{reason}") + 1)
            self._unlogged_drops += 1
        if self._on_drop is not None:
            self._on_drop(reason, 1)
        self._flush_drop_log(force=False)

    def _flush_drop_log(self, *, force: bool) -> None:
        with self._lock:
            now = time.monotonic()
            if not self._unlogged_drops:
                return
            if not force and now - self._last_drop_log < self._log_interval_s:
                return
            count, self._unlogged_drops = self._unlogged_drops, 0
            self._last_drop_log = now
            stats = self.stats
        self._log.warning(
            "tracking_records_dropped",
            since_last_report=count,
            total_full=stats.dropped_full,
            total_failed=stats.dropped_failed,
            total_shutdown=stats.dropped_shutdown,
            total_lost=stats.dropped_lost,
        )
