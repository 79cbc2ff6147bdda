"""A long, bounded, mixed run against one real service: nothing lost, memory stays flat.

    .venv/bin/python bench/soak.py                  # 10 minutes, 16 clients
    .venv/bin/python bench/soak.py --minutes 2      # a shorter check

Serves `tests/pipelines/slow.py` (three steps that sleep as told) under granian with a small
concurrency limit and queue, so that overload (429) really happens, and runs clients that mix:
sync invocations, async jobs polled to the end, streamed invocations (`mode=stream`, read to
the final event), jobs cancelled while running, bursts well past capacity, event streams
held open several at a time on one job (`GET /stream/{id}`, read to the end), and WebSocket
subscribe floods to unknown job ids (every one must get its 404 error frame). Every response
is classified; anything that is not an expected status is an *unexplained* error. At the end
every accepted job must have reached a final state (checked through `GET /jobs/{id}`), and the
worker's resident memory is compared between the middle and the end of the run.

A second service (the example text pipeline, capture `none`, a small
ZENML_SERVING_MAX_JOB_BYTES) takes async jobs with ~1 MB parameters for the same time: its
resident memory is reported against the job byte budget (kept jobs must stay within it; the
rest is evicted).

Bounded in time (`--minutes`) and in requests (`--max-requests`); loopback only; the server is
stopped on exit, error or Ctrl-C. Results: `bench/results/<timestamp>-soak.json` and a summary.
Not a CI test (tests never assert time or memory).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect as websocket_connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import tree_pids  # noqa: E402
from bench.service import base_env, serving_target, snapshot  # noqa: E402
from bench.targets import Server, stop_all  # noqa: E402

PIPELINE = "tests.pipelines.slow:slow_pipeline"
LARGE_PIPELINE = "examples.text_pipeline:text_pipeline"
LARGE_PARAMETER_BYTES = 1_000_000
LARGE_JOB_BUDGET_BYTES = 32 * 1024 * 1024
HELD_STREAMS = 5
SUBSCRIBES_PER_FLOOD = 200
FINAL = {"completed", "failed", "cancelled", "timed_out"}


@dataclass
class Tally:
    """What the clients saw."""

    by_kind: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    unexplained: Counter[str] = field(default_factory=Counter)
    accepted_jobs: list[str] = field(default_factory=list)
    requests: int = 0

    def note(self, kind: str, status: int | str, expected: set[int]) -> None:
        self.requests += 1
        self.by_kind[kind] += 1
        self.statuses[f"{kind} {status}"] += 1
        if status not in expected:
            self.unexplained[f"{kind} {status}"] += 1


def body(first: float, second: float = 0.0, third: float = 0.0) -> dict[str, Any]:
    return {"parameters": {"first_s": first, "second_s": second, "third_s": third}}


async def sync_call(client: httpx.AsyncClient, tally: Tally) -> None:
    response = await client.post("/invoke", json=body(0.002, 0.002, 0.002))
    tally.note("sync", response.status_code, {200, 429})


async def async_job(client: httpx.AsyncClient, tally: Tally) -> None:
    response = await client.post("/invoke?mode=async", json=body(0.01, 0.01, 0.01))
    tally.note("async-submit", response.status_code, {202, 429})
    if response.status_code != 202:
        return
    job_id = response.json()["job_id"]
    tally.accepted_jobs.append(job_id)
    for _ in range(200):
        job = await client.get(f"/jobs/{job_id}")
        tally.note("async-poll", job.status_code, {200})
        if job.status_code != 200 or job.json()["status"] in FINAL:
            return
        await asyncio.sleep(0.05)


async def streamed(client: httpx.AsyncClient, tally: Tally) -> None:
    async with client.stream("POST", "/invoke?mode=stream", json=body(0.01, 0.01)) as response:
        tally.note("stream", response.status_code, {200, 429})
        if response.status_code != 200:
            await response.aread()
            return
        final = None
        async for line in response.aiter_lines():
            if line.startswith("event: job."):
                final = line.removeprefix("event: ")
        ok = final in {"job.completed", "job.failed", "job.cancelled", "job.timed_out"}
        tally.note("stream-final", "ok" if ok else f"missing ({final})", {"ok"})  # type: ignore[arg-type]


async def cancelled(client: httpx.AsyncClient, tally: Tally) -> None:
    response = await client.post("/invoke?mode=async", json=body(0.3, 0.3))
    tally.note("cancel-submit", response.status_code, {202, 429})
    if response.status_code != 202:
        return
    job_id = response.json()["job_id"]
    tally.accepted_jobs.append(job_id)
    await asyncio.sleep(random.uniform(0.0, 0.3))
    cancel = await client.post(f"/jobs/{job_id}/cancel")
    tally.note("cancel", cancel.status_code, {200})


async def burst(client: httpx.AsyncClient, tally: Tally) -> None:
    responses = await asyncio.gather(
        *(client.post("/invoke", json=body(0.05)) for _ in range(20)), return_exceptions=True
    )
    for response in responses:
        if isinstance(response, BaseException):
            tally.note("burst", type(response).__name__, {200, 429})
        else:
            tally.note("burst", response.status_code, {200, 429})


async def held_streams(client: httpx.AsyncClient, tally: Tally) -> None:
    """Several streams open at once on one running job, each read to its final event."""
    response = await client.post("/invoke?mode=async", json=body(0.2, 0.2))
    tally.note("held-submit", response.status_code, {202, 429})
    if response.status_code != 202:
        return
    job_id = response.json()["job_id"]
    tally.accepted_jobs.append(job_id)

    async def hold() -> None:
        async with client.stream("GET", f"/stream/{job_id}") as stream:
            # 429/503: the per-client or total stream cap, which says when to retry.
            tally.note("held-stream", stream.status_code, {200, 429, 503})
            final = None
            async for line in stream.aiter_lines():
                if line.startswith("event: job."):
                    final = line.removeprefix("event: ")
            if stream.status_code == 200:
                ok = final in {"job.completed", "job.failed", "job.cancelled", "job.timed_out"}
                tally.note("held-final", "ok" if ok else f"missing ({final})", {"ok"})  # type: ignore[arg-type]

    await asyncio.gather(*(hold() for _ in range(HELD_STREAMS)))


async def subscribe_flood(client: httpx.AsyncClient, tally: Tally) -> None:
    """Subscribes to unknown job ids on one socket: a 404 error frame for every one."""
    url = str(client.base_url).replace("http://", "ws://").rstrip("/") + "/stream"
    async with websocket_connect(url) as socket:
        for _ in range(SUBSCRIBES_PER_FLOOD):
            await socket.send(json.dumps({"type": "subscribe", "job_id": str(uuid.uuid4())}))
        answered = 0
        while answered < SUBSCRIBES_PER_FLOOD:
            frame = json.loads(await asyncio.wait_for(socket.recv(), 30))
            if frame.get("type") == "ping":
                continue
            answered += 1
            tally.note("ws-subscribe-unknown", frame.get("status", frame.get("type")), {404})


MIX = (
    (sync_call, 56),
    (async_job, 14),
    (streamed, 11),
    (cancelled, 8),
    (burst, 5),
    (held_streams, 4),
    (subscribe_flood, 2),
)


async def large_jobs(url: str, tally: Tally, deadline: float) -> None:
    """Async jobs with ~1 MB parameters, polled to the end (evicted counts as finished)."""
    message = "large parameters " * (LARGE_PARAMETER_BYTES // 17)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        while time.monotonic() < deadline:
            response = await client.post(
                "/invoke?mode=async", json={"parameters": {"message": message}}
            )
            tally.note("large-submit", response.status_code, {202, 429})
            if response.status_code != 202:
                await asyncio.sleep(0.2)
                continue
            job_id = response.json()["job_id"]
            for _ in range(200):
                job = await client.get(f"/jobs/{job_id}")
                tally.note("large-poll", job.status_code, {200, 404})
                if job.status_code != 200 or job.json()["status"] in FINAL:
                    break
                await asyncio.sleep(0.05)


async def client_loop(url: str, tally: Tally, deadline: float, max_requests: int) -> None:
    functions, weights = zip(*MIX, strict=True)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        while time.monotonic() < deadline and tally.requests < max_requests:
            action = random.choices(functions, weights)[0]
            try:
                await action(client, tally)
            except httpx.HTTPError as exc:
                tally.note(action.__name__, type(exc).__name__, set())


def rss_mib(root_pid: int) -> float:
    """Resident memory of the server's workers (all processes but granian's main)."""
    total = 0
    for pid in tree_pids(root_pid):
        if pid == root_pid:
            continue
        with contextlib.suppress(OSError), Path(f"/proc/{pid}/status").open() as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


async def run(args: argparse.Namespace, server: Server, large: Server) -> dict[str, Any]:
    tally = Tally()
    started = time.monotonic()
    deadline = started + args.minutes * 60
    samples: list[tuple[float, float]] = [(0.0, rss_mib(server.pid))]
    large_samples: list[tuple[float, float]] = [(0.0, rss_mib(large.pid))]

    async def sample_memory() -> None:
        while True:
            await asyncio.sleep(args.minutes * 60 / 20)
            samples.append((time.monotonic() - started, rss_mib(server.pid)))
            large_samples.append((time.monotonic() - started, rss_mib(large.pid)))

    sampler = asyncio.create_task(sample_memory())
    await asyncio.gather(
        *(
            client_loop(server.base_url, tally, deadline, args.max_requests)
            for _ in range(args.clients)
        ),
        *(large_jobs(large.base_url, tally, deadline) for _ in range(2)),
    )
    sampler.cancel()
    samples.append((time.monotonic() - started, rss_mib(server.pid)))
    large_samples.append((time.monotonic() - started, rss_mib(large.pid)))

    # Every accepted job must reach a final state.
    # Only finished jobs are ever evicted (TTL, count bound), so a 404 here is a job that
    # finished and was evicted since; a job still unfinished after 10 s is reported.
    not_final: list[str] = []
    evicted = 0
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        for job_id in tally.accepted_jobs:
            for _ in range(100):
                job = await client.get(f"/jobs/{job_id}")
                if job.status_code == 404:
                    evicted += 1
                    break
                if job.status_code == 200 and job.json()["status"] in FINAL:
                    break
                await asyncio.sleep(0.1)
            else:
                not_final.append(job_id)
        status = (await client.get("/status")).json()

    middle = min(samples, key=lambda s: abs(s[0] - samples[-1][0] / 2))
    end = samples[-1]
    return {
        "minutes": args.minutes,
        "clients": args.clients,
        "requests": tally.requests,
        "by_kind": dict(tally.by_kind),
        "statuses": dict(sorted(tally.statuses.items())),
        "unexplained_errors": dict(tally.unexplained),
        "accepted_jobs": len(tally.accepted_jobs),
        "jobs_not_final": not_final,
        "jobs_evicted_after_finishing": evicted,
        "rejected_429": sum(v for k, v in tally.statuses.items() if k.endswith(" 429")),
        "rss_mib": {"start": samples[0][1], "middle": middle[1], "end": end[1]},
        "rss_growth_middle_to_end": (end[1] - middle[1]) / middle[1] if middle[1] else None,
        "rss_samples": samples,
        "service_totals": status["execution"]["totals"],
        "large_jobs": {
            "job_byte_budget_mib": LARGE_JOB_BUDGET_BYTES / 2**20,
            "rss_mib_start": large_samples[0][1],
            "rss_mib_peak": max(rss for _, rss in large_samples),
            "rss_mib_end": large_samples[-1][1],
            "rss_samples": large_samples,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--max-requests", type=int, default=2_000_000)
    parser.add_argument("--concurrency", type=int, default=4, help="ZENML_SERVING_MAX_CONCURRENCY")
    parser.add_argument("--queue", type=int, default=16, help="ZENML_SERVING_MAX_QUEUE_SIZE")
    args = parser.parse_args()

    env = base_env()
    target = serving_target(
        snapshot(PIPELINE, "soak"),
        "zenml-serving-soak",
        "zenml-serving on the slow pipeline, small limits",
        ZENML_SERVING_MAX_CONCURRENCY=str(args.concurrency),
        ZENML_SERVING_MAX_QUEUE_SIZE=str(args.queue),
        ZENML_SERVING_CAPTURE_DEFAULT="sampled",
        ZENML_SERVING_CAPTURE_SAMPLE_RATE="0.01",
        ZENML_SERVING_JOB_TTL="60",
        ZENML_SERVING_MAX_JOBS="2000",
    )
    results_dir = ROOT / "bench" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    large_target = serving_target(
        snapshot(LARGE_PIPELINE, "soak-large"),
        "zenml-serving-soak-large",
        "zenml-serving on the text pipeline, large parameters, a small job byte budget",
        ZENML_SERVING_CAPTURE_DEFAULT="none",
        ZENML_SERVING_MAX_JOB_BYTES=str(LARGE_JOB_BUDGET_BYTES),
        ZENML_SERVING_MAX_REQUEST_SIZE=str(4 * LARGE_PARAMETER_BYTES),
    )
    server = Server(
        target, base_env=env, cwd=ROOT, log_path=results_dir / f"{stamp}-soak.log", cpu=None
    )
    large = Server(
        large_target,
        base_env=env,
        cwd=ROOT,
        log_path=results_dir / f"{stamp}-soak-large.log",
        cpu=None,
    )
    try:
        server.wait_ready()
        large.wait_ready()
        result = asyncio.run(run(args, server, large))
    finally:
        stop_all()
    result["command"] = " ".join(sys.argv)
    (results_dir / f"{stamp}-soak.json").write_text(json.dumps(result, indent=2))
    printed = {k: v for k, v in result.items() if k != "rss_samples"}
    printed["large_jobs"] = {k: v for k, v in result["large_jobs"].items() if k != "rss_samples"}
    print(json.dumps(printed, indent=2))
    ok = not result["unexplained_errors"] and not result["jobs_not_final"]
    growth = result["rss_growth_middle_to_end"]
    print(
        f"\nsoak: {result['requests']} requests, {result['rejected_429']} shed with 429, "
        f"{sum(result['unexplained_errors'].values())} unexplained errors, "
        f"{len(result['jobs_not_final'])} of {result['accepted_jobs']} accepted jobs not final, "
        f"RSS {result['rss_mib']['start']:.0f} -> {result['rss_mib']['middle']:.0f} -> "
        f"{result['rss_mib']['end']:.0f} MiB (middle to end {100 * (growth or 0):+.1f}%); "
        f"large-parameter jobs: RSS {result['large_jobs']['rss_mib_start']:.0f} -> peak "
        f"{result['large_jobs']['rss_mib_peak']:.0f} MiB with a "
        f"{result['large_jobs']['job_byte_budget_mib']:.0f} MiB job byte budget"
    )
    return 0 if ok and growth is not None and growth < 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
