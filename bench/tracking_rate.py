"""Run tracking at a fixed offered rate (open loop): how many invocations become ZenML runs.

    .venv/bin/python -m bench.tracking_rate --modes none,metadata,full --rates 100,200,300

For each capture mode, one zenml-serving server (one granian worker, the local SQLite store,
ZENML_SERVING_TRACKING_WRITER as given) is offered `POST /invoke` on text_pipeline at each
rate for `--seconds`: request i is sent at t0 + i/rate whatever happened to earlier ones
(latency is measured from that scheduled time, so a stalled server shows in p99 instead of
slowing the load). Then `/status` is polled until the writer's queue is empty. Reported per
mode and rate: answered, runs recorded during the load window and in all (per second),
recorded/answered, drops by reason, p50/p99; and p50 at one connection (closed loop, 300
requests) against `none`. The load generator is asyncio over keep-alive sockets: at these
rates it needs a few percent of a core. Raw results: bench/results/<time>-tracking.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import urllib.request
from typing import Any

from bench.scenarios import EXAMPLE, INVOKE
from bench.service import ROOT, base_env, serving_target, snapshot
from bench.targets import Server, stop_all

RESULTS = ROOT / "bench" / "results"


def _request_bytes(port: int) -> bytes:
    body = INVOKE.body.encode()
    head = (
        f"POST /invoke HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _one(conns: asyncio.Queue[Any], request: bytes, port: int) -> int:
    reader, writer = await conns.get()
    try:
        writer.write(request)
        await writer.drain()
        status_line = await reader.readline()
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await reader.readexactly(length)
        await conns.put((reader, writer))
        return int(status_line.split()[1])
    except Exception:
        writer.close()
        await conns.put(await asyncio.open_connection("127.0.0.1", port))
        return 0


async def _offer(port: int, rate: float, seconds: float, connections: int) -> dict[str, Any]:
    request = _request_bytes(port)
    conns: asyncio.Queue[Any] = asyncio.Queue()
    for _ in range(connections):
        await conns.put(await asyncio.open_connection("127.0.0.1", port))
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def timed(at: float) -> None:
        status = await _one(conns, request, port)
        latencies.append(time.monotonic() - at)
        statuses[status] = statuses.get(status, 0) + 1

    start = time.monotonic() + 0.05
    tasks = []
    for i in range(int(rate * seconds)):
        at = start + i / rate
        delay = at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(timed(at)))
    await asyncio.gather(*tasks)
    while not conns.empty():
        _, writer = conns.get_nowait()
        writer.close()
    latencies.sort()
    return {
        "offered": len(tasks),
        "answered_2xx": sum(n for s, n in statuses.items() if 200 <= s < 300),
        "statuses": {str(k): v for k, v in statuses.items()},
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99) - 1],
    }


async def _closed_c1(port: int, requests: int) -> float:
    request = _request_bytes(port)
    conns: asyncio.Queue[Any] = asyncio.Queue()
    await conns.put(await asyncio.open_connection("127.0.0.1", port))
    latencies = []
    for _ in range(requests):
        began = time.monotonic()
        await _one(conns, request, port)
        latencies.append(time.monotonic() - began)
    return 1000 * statistics.median(latencies)


def _tracking(server: Server) -> dict[str, Any]:
    with urllib.request.urlopen(server.base_url + "/status", timeout=5) as response:
        status: dict[str, Any] = json.load(response)
    tracking: dict[str, Any] = status.get("tracking", {})
    return tracking


def _measure(server: Server, rate: float, seconds: float, drain_s: float) -> dict[str, Any]:
    before = _tracking(server).get("written", 0)
    began = time.monotonic()
    load = asyncio.run(_offer(server.port, rate, seconds, connections=64))
    load_s = time.monotonic() - began
    during = _tracking(server).get("written", 0) - before
    deadline = time.monotonic() + drain_s
    tracking = _tracking(server)
    while tracking.get("queue_depth", 0) and time.monotonic() < deadline:
        time.sleep(0.25)
        tracking = _tracking(server)
    time.sleep(1.0)  # the batch in the writer process when the queue emptied
    tracking = _tracking(server)
    total = tracking.get("written", 0) - before
    return {
        "rate": rate,
        **load,
        "load_s": round(load_s, 2),
        "recorded_during_load": during,
        "recorded_per_s_during_load": round(during / load_s, 1),
        "recorded_total": total,
        "recorded_over_answered": round(total / max(1, load["answered_2xx"]), 3),
        "drain_s": round(time.monotonic() - began - load_s, 1),
        "dropped": tracking.get("dropped", {}),
    }


def main() -> None:
    """Parse the arguments, run every mode and rate, print a table and write the raw file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="none,metadata,full")
    parser.add_argument("--rates", default="100,200,300")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--drain", type=float, default=60.0)
    parser.add_argument("--writer", default="process", choices=("process", "thread"))
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this core")
    parser.add_argument(
        "--pipeline",
        default=EXAMPLE,
        help="module:pipeline to serve (bench.tracking_pipelines:text_previews: full previews, "
        "no artifacts, whatever --modes says)",
    )
    args = parser.parse_args()
    snapshot_id = snapshot(args.pipeline, "bench-tracking-" + args.pipeline.rsplit(":", 1)[1])
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results: list[dict[str, Any]] = []
    try:
        for mode in args.modes.split(","):
            target = serving_target(
                snapshot_id,
                f"tracking-{mode}",
                f"capture {mode}, {args.writer} writer",
                ZENML_SERVING_CAPTURE_DEFAULT=mode,
                ZENML_SERVING_TRACKING_WRITER=args.writer,
                ZENML_SERVING_TRACKING_QUEUE_SIZE="10000",
                ZENML_SERVING_MAX_QUEUE_SIZE="10000",
                ZENML_SERVING_WORKERS="1",
            )
            server = Server(
                target,
                base_env=base_env(),
                cwd=ROOT,
                log_path=RESULTS / f"{stamp}-tracking-{mode}.log",
                cpu=args.cpu,
            )
            try:
                server.wait_ready()
                time.sleep(5.0)  # the writer process imports ZenML
                asyncio.run(_closed_c1(server.port, 50))  # warm-up
                c1 = asyncio.run(_closed_c1(server.port, 300))
                _measure(server, 20, 2.0, args.drain)  # the writer's first batches
                for rate in (float(r) for r in args.rates.split(",")):
                    row = {
                        "mode": mode,
                        "pipeline": args.pipeline,
                        "writer": args.writer,
                        "c1_p50_ms": round(c1, 3),
                    }
                    row.update(_measure(server, rate, args.seconds, args.drain))
                    results.append(row)
                    print(json.dumps(row), flush=True)
            finally:
                server.stop()
    finally:
        stop_all()
        out = RESULTS / f"{stamp}-tracking.json"
        out.write_text(json.dumps(results, indent=2))
        print(f"raw results: {out}")


if __name__ == "__main__":
    main()
