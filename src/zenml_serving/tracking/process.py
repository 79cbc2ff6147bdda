"""WriterProcess: run records written by a child Python process, off the serving process's GIL.

Writing a run through ZenML's store client is 0.1-0.3 s of Python (pydantic, SQLAlchemy);
in the serving process that time is taken from requests. Here the serving process only
pickles a batch of records into a pipe and waits on the answer (waiting releases the GIL);
a child process (`python -m zenml_serving.tracking.process`) unpickles and writes them with
`BatchRecorder` and answers with one outcome per record.

The child is a plain subprocess (not `multiprocessing`): granian's workers may be daemonic,
and daemonic processes may not have multiprocessing children. It inherits the environment
(ZENML_CONFIG_PATH, ZENML_STORE_*: the same store) and gets the parent's `sys.path` first, so
that step values of the user's own types unpickle. It exits when its pipe closes.

A child that dies while holding a batch raises `WriterLostError` for that batch: the caller
counts it lost and never sends it again (a record is never written twice); the next batch
starts a new child.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zenml_serving.tracking.records import RunRecord

__all__ = ["RecordFailed", "WriterLostError", "WriterProcess"]


class WriterLostError(Exception):
    """The writer process died holding a batch: its records are lost, not retried."""


@dataclass(frozen=True)
class RecordFailed:
    """A record the store refused; `unavailable` when the store could not be reached."""

    error: str
    unavailable: bool = False


class WriterProcess:
    """One child process that writes batches of run records; restarted after it dies."""

    def __init__(self, start_timeout_s: float = 120.0) -> None:
        self._start_timeout_s = start_timeout_s
        self._child: subprocess.Popen[bytes] | None = None
        self._to_child: Connection | None = None
        self._from_child: Connection | None = None
        self._lock = threading.Lock()
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        """The child's process id (None before the first start)."""
        return self._child.pid if self._child is not None else None

    def start(self) -> None:
        """Start the child now (it imports ZenML: a few seconds), instead of at the first batch."""
        with self._lock:
            self._ensure_started()

    def write(self, records: list[RunRecord]) -> list[RecordFailed | None]:
        """Write `records`; one outcome per record (None: written).

        Raises `pickle.PicklingError` (before anything is sent) when a record cannot cross.
        """
        try:
            payload = pickle.dumps(records, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise pickle.PicklingError(f"{type(exc).__name__}: {exc}") from exc
        with self._lock:
            self._ensure_started()
            assert self._to_child is not None
            assert self._from_child is not None
            try:
                self._to_child.send_bytes(payload)
                answer = self._from_child.recv_bytes()
            except (EOFError, OSError) as exc:
                self._discard()
                raise WriterLostError(f"tracking writer process died: {exc}") from exc
        outcomes: list[RecordFailed | None] = pickle.loads(answer)  # noqa: S301 - our own child
        return outcomes

    def stop(self, timeout_s: float = 1.0) -> None:
        """Close the pipe (the child exits when it reads the end) and reap the child.

        A batch still being written after `timeout_s` (the grace period is over) is cut
        short: the child is killed and the caller's `write` raises `WriterLostError`.
        """
        if not self._lock.acquire(timeout=timeout_s):
            child = self._child
            if child is not None and child.poll() is None:
                child.kill()
            self._lock.acquire()
        try:
            child = self._child
            self._discard(kill=False)
        finally:
            self._lock.release()
        if child is not None:
            try:
                child.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def _ensure_started(self) -> None:
        if self._child is not None and self._child.poll() is None:
            return
        if self._child is not None:
            self._discard()
            self.restarts += 1
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        child = subprocess.Popen(  # noqa: S603 - our own module, this interpreter
            [
                sys.executable,
                "-m",
                "zenml_serving.tracking.process",
                str(to_child_r),
                str(from_child_w),
            ],
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
            close_fds=True,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._child = child
        self._to_child = Connection(to_child_w, readable=False)
        self._from_child = Connection(from_child_r, writable=False)
        self._to_child.send_bytes(pickle.dumps(list(sys.path)))

    def _discard(self, *, kill: bool = True) -> None:
        """Forget the child: close its pipes and (unless it is exiting by itself) kill it."""
        for conn in (self._to_child, self._from_child):
            if conn is not None:
                conn.close()
        self._to_child = self._from_child = None
        if kill and self._child is not None and self._child.poll() is None:
            self._child.kill()
            self._child.wait()
        self._child = None


def _child_main(read_fd: int, write_fd: int) -> None:
    inbox = Connection(read_fd, writable=False)
    outbox = Connection(write_fd, readable=False)
    # The pipe is ours alone (inherited fds from the serving process): pickle is safe here.
    parent_path = pickle.loads(inbox.recv_bytes())  # noqa: S301
    sys.path[:0] = [p for p in parent_path if p not in sys.path]
    from zenml_serving.telemetry.logging import configure_logging
    from zenml_serving.tracking.batch import BatchRecorder

    recorder = BatchRecorder()
    configure_logging()  # after ZenML's import, which installs its own handlers
    while True:
        try:
            payload = inbox.recv_bytes()
        except (EOFError, OSError):
            return
        records: list[Any] = pickle.loads(payload)  # noqa: S301
        outbox.send_bytes(pickle.dumps(recorder.write(records), protocol=pickle.HIGHEST_PROTOCOL))


if __name__ == "__main__":
    _child_main(int(sys.argv[1]), int(sys.argv[2]))
