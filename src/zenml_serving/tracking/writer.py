"""TrackingWriter: a background thread that writes run records, with a bounded queue.

The request path only ever enqueues (`submit`, never blocking). When the store is slow or
down, records wait in the queue; beyond its bound they are dropped, counted, and logged at
most once per interval with the count, never silently. A failed write is retried a few times
with back-off (the recorder is idempotent per invocation id), then dropped and counted. On
shutdown the queue is flushed within a grace period; what is left is counted as dropped.

The writer runs in the serving process, so its Python work (ZenML's store client: pydantic,
SQLAlchemy) competes with the request path for the GIL: unthrottled, writing a run per
invocation made a 1 ms pipeline 4x slower (measured, BENCHMARKS.md). `duty` bounds the share
of time the writer may spend writing: after a write that took t seconds it rests
t * (1/duty - 1). What it cannot write in its share waits in the queue and, past the bound, is
dropped and counted. No rest while flushing at shutdown.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from collections.abc import Callable

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

    @property
    def dropped(self) -> int:
        """All records that never reached the store."""
        return self.dropped_full + self.dropped_failed + self.dropped_shutdown


class TrackingWriter:
    """Owns one thread that turns queued items into store writes with `write(item)`."""

    def __init__(
        self,
        write: Callable[[Any], object],
        *,
        max_queue: int = 1000,
        retries: int = 3,
        retry_delay_s: float = 0.5,
        log_interval_s: float = 60.0,
        duty: float = 1.0,
        on_drop: Callable[[str, int], None] | None = None,
        logger: Any = None,
    ) -> None:
        if not 0.0 < duty <= 1.0:
            raise ValueError(f"duty must be in (0, 1], not {duty}")
        self._write = write
        self._rest_per_busy = 1.0 / duty - 1.0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._retries = retries
        self._retry_delay_s = retry_delay_s
        self._log_interval_s = log_interval_s
        self._on_drop = on_drop
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
        """Records waiting to be written."""
        return self._queue.qsize()

    def start(self) -> None:
        """Start the writer thread."""
        self._thread = threading.Thread(
            target=self._run, name="zenml-serving-tracking", daemon=True
        )
        self._thread.start()

    def submit(self, item: Any) -> bool:
        """Queue `item`; False (and counted) if the queue is full or the writer stopped."""
        if self._stopping.is_set():
            self._dropped("shutdown")
            return False
        try:
            self._queue.put_nowait(item)
        except queue.Full:
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
        self._thread.join(timeout=max(0.0, deadline - time.monotonic()) + 5.0)
        self._flush_drop_log(force=True)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                started = time.monotonic()
                self._write_with_retries(item)
                if self._rest_per_busy and not self._stopping.is_set():
                    self._stopping.wait((time.monotonic() - started) * self._rest_per_busy)
            finally:
                self._queue.task_done()

    def _write_with_retries(self, item: Any) -> None:
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
        )
