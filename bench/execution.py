"""Execution-layer figures: async submit -> SSE latency, stream delivery rate, overload.

    .venv/bin/python bench/execution.py             # all three, a few minutes
    .venv/bin/python bench/execution.py --only overload

1. **Async submit + SSE first event**: `POST /invoke?mode=async` then `GET /stream/{id}`, one
   client, sequential: time to the 202, to the first event (`job.queued`, replayed) and to
   `job.completed`, over N jobs of `tests/pipelines/slow.py` with no sleeps.
2. **Events per second on one stream**: a finished 50-step job (103 events) read from
   `/stream/{id}` from the start (replay), and a running one followed live.
3. **Overload**: `slow_pipeline` with 10 ms per step (~30 ms a call) behind 4 slots and a
   queue of 4, driven by 4x the 8 it can hold (32 concurrent clients) for `--seconds`: latency
   of the 429 answers, latency of accepted requests, against the same accepted latency with
   the service unloaded (4 clients) measured right before.

The server runs on core 0, this client on core 1. The client is Python (httpx, asyncio) on
purpose: these are latencies of individual events
and of requests whose service time is milliseconds, not a throughput ceiling; wrk cannot
follow an SSE stream or split latency by status. Loopback only; bounded in time; the server
is stopped on exit. Raw results: `bench/results/<timestamp>-execution.json`.
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

from bench.service import base_env, serving_target, snapshot  # noqa: E402
from bench.targets import Server, stop_all  # noqa: E402

SLOW = "tests.pipelines.slow:slow_pipeline"
CHAIN = "tests.pipelines.long_chain:long_chain_pipeline"


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) in milliseconds of seconds `values`."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index] * 1000


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": pct(values, 50),
        "p90_ms": pct(values, 90),
        "p99_ms": pct(values, 99),
    }


def serve(snapshot_id: str, log: Path, **extra: str) -> Server:
    target = serving_target(
        snapshot_id, "zenml-serving", "zenml-serving", ZENML_SERVING_CAPTURE_DEFAULT="none", **extra
    )
    server = Server(target, base_env=base_env(), cwd=ROOT, log_path=log, cpu=0)
    server.wait_ready()
    return server


async def sse_events(client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    async with client.stream("GET", url, headers=headers or {}) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                yield time.perf_counter(), json.loads(line[6:])


async def submit_and_stream(url: str, jobs: int) -> dict[str, Any]:
    accepted, first, done = [], [], []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        body = {"parameters": {}}
        for _ in range(jobs):
            start = time.perf_counter()
            response = await client.post("/invoke?mode=async", json=body)
            accepted.append(time.perf_counter() - start)
            stream = response.json()["stream"]
            async for at, event in sse_events(client, stream):
                if "type" not in event:
                    continue
                if not first or len(first) < len(accepted):
                    first.append(at - start)
                if event["type"] == "job.completed":
                    done.append(at - start)
                    break
    return {
        "submit_202": summary(accepted),
        "first_event": summary(first),
        "completed_event": summary(done),
    }


async def stream_rate(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        # Live: follow a running job from submission.
        job = (await client.post("/invoke?mode=async", json={"parameters": {}})).json()
        times = []
        async for at, event in sse_events(client, job["stream"]):
            if "type" in event:
                times.append(at)
            if event.get("type") == "job.completed":
                break
        live = (len(times) - 1) / (times[-1] - times[0])
        # Replay: the same finished job read from the start, several times.
        rates = []
        for _ in range(20):
            start = time.perf_counter()
            count = 0
            async for _at, event in sse_events(client, job["stream"]):
                if "type" in event:
                    count += 1
            rates.append(count / (time.perf_counter() - start))
    return {
        "events_per_job": len(times),
        "live_events_per_s": round(live),
        "replay_events_per_s_median": round(statistics.median(rates)),
    }


async def overload(url: str, seconds: float, clients: int, unloaded_clients: int) -> dict[str, Any]:
    body = {"parameters": {"first_s": 0.01, "second_s": 0.01, "third_s": 0.01}}

    async def drive(n: int, duration: float) -> tuple[list[float], list[float], dict[str, int]]:
        ok, shed, other = [], [], {}
        deadline = time.monotonic() + duration

        async def loop(client: httpx.AsyncClient) -> None:
            while time.monotonic() < deadline:
                start = time.perf_counter()
                response = await client.post("/invoke", json=body)
                elapsed = time.perf_counter() - start
                if response.status_code == 200:
                    ok.append(elapsed)
                elif response.status_code == 429:
                    shed.append(elapsed)
                    await asyncio.sleep(0.001)
                else:
                    other[str(response.status_code)] = other.get(str(response.status_code), 0) + 1

        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
            await asyncio.gather(*(loop(client) for _ in range(n)))
        return ok, shed, other

    unloaded_ok, unloaded_shed, unloaded_other = await drive(unloaded_clients, seconds)
    loaded_ok, loaded_shed, loaded_other = await drive(clients, seconds)
    return {
        "unloaded": {
            "clients": unloaded_clients,
            "accepted": summary(unloaded_ok),
            "shed_429": len(unloaded_shed),
            "other": unloaded_other,
        },
        "overloaded": {
            "clients": clients,
            "accepted": summary(loaded_ok),
            "shed_429": summary(loaded_shed),
            "other": loaded_other,
        },
        "accepted_p99_ratio": pct(loaded_ok, 99) / pct(unloaded_ok, 99),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=["sse", "rate", "overload"])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})  # the client on core 1, the server pinned to core 0
    results_dir = ROOT / "bench" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log = results_dir / f"{stamp}-execution.log"
    result: dict[str, Any] = {"command": " ".join(sys.argv)}
    try:
        if args.only in (None, "sse"):
            server = serve(snapshot(SLOW, "bench-slow"), log)
            result["async_submit_sse"] = asyncio.run(submit_and_stream(server.base_url, args.jobs))
            server.stop()
        if args.only in (None, "rate"):
            server = serve(snapshot(CHAIN, "bench-chain"), log)
            result["stream_rate"] = asyncio.run(stream_rate(server.base_url))
            server.stop()
        if args.only in (None, "overload"):
            server = serve(
                snapshot(SLOW, "bench-slow"),
                log,
                ZENML_SERVING_MAX_CONCURRENCY="4",
                ZENML_SERVING_MAX_QUEUE_SIZE="4",
            )
            result["overload"] = asyncio.run(overload(server.base_url, args.seconds, 32, 4))
            server.stop()
    finally:
        stop_all()
    (results_dir / f"{stamp}-execution.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
