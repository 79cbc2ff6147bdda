"""`emit(value)`: a step pushes a chunk of partial output (an LLM's tokens, say) while it runs.

Served, each chunk becomes a `step.chunk` event of the invocation's job (SSE, WebSocket,
`?mode=stream`) with the step's name and a sequence number from 1 per step. Elsewhere (a
normal ZenML run under any orchestrator, a sync invocation, which has no stream) it does
nothing and returns False, so a pipeline that emits runs everywhere.

The engine sets the current step's `StepChunks` in a `ContextVar` around each step (each
concurrently running step has its own). Bounds: a chunk is JSON of at most `MAX_CHUNK_BYTES`
(a larger one raises `ChunkTooLargeError`, naming the step: the author must split it); and a
step that emits faster than its events are written is not slowed: a chunk that finds the job's
backlog full is dropped, counted on the step (`dropped`) and in the process's totals, and
`emit` returns False. The step's sequence numbers count every chunk, dropped ones included,
so a client sees the gap.

Chunks are delivered, never recorded: no ZenML run metadata, span attribute or log line
carries their content whatever the capture policy (a step span gets the counts).
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from zenml_serving.execution.outputs import to_json_builtins

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "MAX_CHUNK_BYTES",
    "ChunkTooLargeError",
    "StepChunks",
    "chunk_totals",
    "current_chunks",
    "emit",
]

MAX_CHUNK_BYTES = 65_536
"""Largest chunk, as JSON bytes."""

_encoder = msgspec.json.Encoder()


class ChunkTooLargeError(ValueError):
    """A chunk is larger than MAX_CHUNK_BYTES as JSON."""


@dataclass
class ChunkTotals:
    """Chunks of this process: delivered to a job's events, or dropped (backlog full)."""

    emitted: int = 0
    dropped: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, *, delivered: bool) -> None:
        """Count one chunk."""
        with self._lock:
            if delivered:
                self.emitted += 1
            else:
                self.dropped += 1


chunk_totals = ChunkTotals()
"""Process-wide counts (shown by /status)."""


class StepChunks:
    """The chunks of one running step: numbers them and hands them to the invocation's job."""

    __slots__ = ("deliver", "dropped", "emitted", "step")

    def __init__(self, step: str, deliver: Callable[[str, int, Any, int], bool]) -> None:
        self.step = step
        self.deliver = deliver
        """`deliver(step, seq, value, size)`: False when the job's backlog is full (dropped)."""
        self.emitted = 0
        """Chunks delivered."""
        self.dropped = 0
        """Chunks dropped because the job's backlog was full."""

    def push(self, value: Any) -> bool:
        """Number `value` and deliver it; False when it was dropped."""
        try:
            builtins = to_json_builtins({"chunk": value})["chunk"]
        except TypeError as exc:
            raise TypeError(
                f"emit() in step '{self.step}': the chunk cannot be sent as JSON ({exc})"
            ) from None
        size = len(_encoder.encode(builtins))
        if size > MAX_CHUNK_BYTES:
            raise ChunkTooLargeError(
                f"emit() in step '{self.step}': a chunk of {size} bytes as JSON is over the "
                f"{MAX_CHUNK_BYTES} bytes limit; emit smaller pieces"
            )
        seq = self.emitted + self.dropped + 1
        delivered = self.deliver(self.step, seq, builtins, size)
        if delivered:
            self.emitted += 1
        else:
            self.dropped += 1
        chunk_totals.count(delivered=delivered)
        return delivered


current_chunks: ContextVar[StepChunks | None] = ContextVar(
    "zenml_serving_step_chunks", default=None
)
"""The running served step's chunks (None outside a served step with a stream)."""


def emit(value: Any) -> bool:
    """Push `value` (anything JSON-friendly, up to 64 KiB as JSON) as partial output of the
    running step to the invocation's stream clients.

    Returns True when it was queued for the stream, False when nothing streams it (a normal
    ZenML run, a sync invocation) or it was dropped because the job's backlog is full (the
    step emits faster than its events can be written). Raises ChunkTooLargeError for a chunk
    over the limit and TypeError for one that is not JSON-friendly.
    """
    chunks = current_chunks.get()
    if chunks is None:
        return False
    return chunks.push(value)
