"""A step that streams partial output with `emit()`: `count` chunks, then its answer."""

from __future__ import annotations

import time

from zenml import pipeline, step

from zenml_serving import emit

CHUNK_MARK = "chunk-only-5b2c"
"""In every chunk and nowhere else (not a parameter, not an output): where it shows up, a
chunk was recorded."""


@step
def chatter(count: int, secret: str) -> int:
    """Emit `count` numbered chunks (each quoting `secret`); return how many were queued."""
    queued = 0
    for i in range(1, count + 1):
        queued += emit({"i": i, "text": f"token {i} {secret}", "mark": CHUNK_MARK})
    return queued


@pipeline
def chunks_pipeline(count: int = 3, secret: str = "") -> int:
    """chatter."""
    return chatter(count=count, secret=secret)


@step
def paced(count: int, interval_s: float) -> dict[str, float]:
    """Emit `count` chunks stamped with the wall clock, `interval_s` apart (0: a burst); answer
    how long the emit calls took in all and how many were queued (for bench/chunks.py)."""
    spent = 0.0
    queued = 0
    for i in range(count):
        started = time.perf_counter()
        queued += emit({"i": i, "t": time.time()})
        spent += time.perf_counter() - started
        if interval_s:
            time.sleep(interval_s)
    return {"emit_s": spent, "queued": queued}


@pipeline
def paced_chunks(count: int = 100, interval_s: float = 0.0) -> dict[str, float]:
    """paced."""
    return paced(count=count, interval_s=interval_s)
