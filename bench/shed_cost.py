"""What a 429 costs the server: CPU per refused `POST /invoke`, in-process, on the real app.

    .venv/bin/python bench/shed_cost.py [--snapshot-id ID]              # now
    PYTHONPATH=<earlier checkout>/src .venv/bin/python bench/shed_cost.py --snapshot-id ID

`create_app()` on text_pipeline with ZENML_SERVING_MAX_CONCURRENCY=1 and
ZENML_SERVING_MAX_QUEUE_SIZE=0, the one slot held, then `-n` direct ASGI calls (no HTTP
parsing, no client) in sync and async mode, 5 rounds each, uvloop, pinned to core 0 when
`taskset` allows: the process CPU time per refused request, median (min-max). Under overload
most requests are refused, so this is what decides how quickly overload is shed (the p99 of
429 answers is queueing behind this work). Run it with the code before a change
(`PYTHONPATH`) and after, alternating, for a paired A/B.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scenarios import EXAMPLE, MESSAGE
from bench.service import base_env, snapshot

BODY = json.dumps({"parameters": {"message": MESSAGE}}).encode()


async def call(app: Any, query: bytes) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/invoke",
        "raw_path": b"/invoke",
        "root_path": "",
        "query_string": query,
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
        ],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": BODY, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    status: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    return status[0]


async def measure(app: Any, n: int) -> dict[str, list[float]]:
    started = asyncio.Event()
    asked = False

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "lifespan.startup"}
        await asyncio.sleep(3600)
        return {"type": "lifespan.shutdown"}

    async def send(message: dict[str, Any]) -> None:  # noqa: ARG001
        started.set()

    lifespan = asyncio.ensure_future(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    )
    await started.wait()
    ctx = app.dependencies["ctx"].dependency()
    for _ in range(200):
        assert await call(app, b"") == 200
    slot = ctx.manager.slots.reserve()  # the one slot, held: everything else is refused
    figures: dict[str, list[float]] = {}
    for mode, query in (("sync", b""), ("async", b"mode=async")):
        for _ in range(200):
            assert await call(app, query) == 429
        rounds = []
        for _ in range(5):
            cpu = time.process_time()
            for _ in range(n):
                await call(app, query)
            rounds.append((time.process_time() - cpu) / n * 1e6)
        figures[mode] = rounds
    slot.release()
    lifespan.cancel()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot-id", help="reuse this snapshot of text_pipeline")
    parser.add_argument("-n", type=int, default=2000, help="refused calls per round")
    args = parser.parse_args()
    snapshot_id = args.snapshot_id or snapshot(EXAMPLE, "bench-shed")
    os.environ.update(base_env())
    os.environ.update(
        {
            "ZENML_PIPELINE_DEPLOYMENT_ID": snapshot_id,
            "ZENML_SERVING_CAPTURE_DEFAULT": "none",
            "ZENML_SERVING_MAX_CONCURRENCY": "1",
            "ZENML_SERVING_MAX_QUEUE_SIZE": "0",
        }
    )
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setaffinity(0, {0})
    import uvloop

    from zenml_serving.app import create_app

    app = create_app()
    logging.disable(logging.CRITICAL)
    figures = uvloop.run(measure(app, args.n))
    print(f"snapshot {snapshot_id}; CPU per refused request, median (min-max) of 5 x {args.n}")
    for mode, rounds in figures.items():
        print(
            f"  429 {mode:5s} {statistics.median(rounds):6.1f} us "
            f"({min(rounds):.1f}-{max(rounds):.1f})"
        )


if __name__ == "__main__":
    main()
