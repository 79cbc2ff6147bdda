"""Cost of one emitted chunk, end to end: `emit()` in a served step -> an SSE client.

    .venv/bin/python bench/chunks.py               # a minute or so
    .venv/bin/python bench/chunks.py --count 2000

`tests/pipelines/chunks.py:paced_chunks` emits chunks stamped with the wall clock
(`time.time()`, the same clock on one host). The client streams each job with
`POST /invoke?mode=stream` and stamps every `step.chunk` on arrival:

1. **Latency, paced**: 5 jobs of `--count` chunks 2 ms apart (the stream is never behind):
   arrival - emit time per chunk, p50 / p90 / p99.
2. **Throughput, burst**: 5 jobs of `--count` chunks emitted in a tight loop: chunks per second
   end to end (first chunk emitted to last chunk received) and as the client sees them (first
   to last arrival), and the step's own cost per `emit()` call (it returns the time spent in
   emit).

The server runs on core 0 (one worker, memory job backend, capture `none`), this client on
core 1; loopback only; the server is stopped on exit. Raw results:
`bench/results/<timestamp>-chunks.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.execution import pct, serve  # noqa: E402
from bench.service import snapshot  # noqa: E402
from bench.targets import stop_all  # noqa: E402

PACED = "tests.pipelines.chunks:paced_chunks"
JOBS = 5


async def stream_job(url: str, count: int, interval_s: float) -> dict[str, Any]:
    """One streamed job: per-chunk latency, arrival span, the step's emit cost."""
    latencies: list[float] = []
    arrivals: list[float] = []
    first_emitted = float("nan")
    outputs: dict[str, Any] = {}
    async with (
        httpx.AsyncClient(base_url=url, timeout=120) as client,
        client.stream(
            "POST",
            "/invoke?mode=stream",
            json={"parameters": {"count": count, "interval_s": interval_s}},
        ) as response,
    ):
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            now = time.time()
            event = json.loads(line[6:])
            if event.get("type") == "step.chunk":
                if not latencies:
                    first_emitted = event["chunk"]["t"]
                latencies.append(now - event["chunk"]["t"])
                arrivals.append(now)
            elif event.get("type") == "job.completed":
                outputs = event["outputs"]["output"]
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else float("nan")
    return {
        "received": len(latencies),
        "latencies": latencies,
        "chunks_per_s": (len(arrivals) - 1) / span if span else float("nan"),
        "end_to_end_per_s": len(arrivals) / (arrivals[-1] - first_emitted)
        if arrivals
        else float("nan"),
        "emit_us": outputs.get("emit_s", float("nan")) / count * 1e6,
        "queued": outputs.get("queued"),
    }


async def measure(url: str, count: int) -> dict[str, Any]:
    await stream_job(url, 50, 0.0)  # warm-up
    paced = [await stream_job(url, count, 0.002) for _ in range(JOBS)]
    burst = [await stream_job(url, count, 0.0) for _ in range(JOBS)]
    latencies = [v for job in paced for v in job["latencies"]]
    return {
        "count": count,
        "paced_latency": {
            "n": len(latencies),
            "p50_ms": pct(latencies, 50),
            "p90_ms": pct(latencies, 90),
            "p99_ms": pct(latencies, 99),
        },
        "paced_received": [j["received"] for j in paced],
        "burst_chunks_per_s": [round(j["chunks_per_s"]) for j in burst],
        "burst_chunks_per_s_median": round(statistics.median(j["chunks_per_s"] for j in burst)),
        "burst_end_to_end_per_s": [round(j["end_to_end_per_s"]) for j in burst],
        "burst_end_to_end_per_s_median": round(
            statistics.median(j["end_to_end_per_s"] for j in burst)
        ),
        "burst_emit_us_median": round(statistics.median(j["emit_us"] for j in burst), 2),
        "burst_received": [j["received"] for j in burst],
        "burst_queued": [j["queued"] for j in burst],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="chunks per job")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # the server is on core 0
    results_dir = ROOT / "bench" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        server = serve(
            snapshot(PACED, "bench-chunks"),
            results_dir / f"{stamp}-chunks-server.log",
            ZENML_SERVING_MAX_EVENTS_PER_JOB=str(args.count + 100),
        )
        result = asyncio.run(measure(server.base_url, args.count))
        server.stop()
    finally:
        stop_all()
    (results_dir / f"{stamp}-chunks.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
