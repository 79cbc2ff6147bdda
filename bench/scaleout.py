#!/usr/bin/env python3
"""Scale-out benchmark (issue 7), side by side in one run, A and B alternating, 3 repetitions:

1. sync throughput of the example pipeline with 1 vs 2 granian workers
   (wrk -t1 -c32 -d10s after a 2 s warm-up, server and wrk unpinned: 2 workers need both cores);
2. async submit -> result latency with the in-memory, the SQLite and the Redis job backends
   (one client: POST /invoke?mode=async, then GET /stream/{id} until job.completed; 300 jobs,
   each on a fresh connection so that with 2 workers the stream often reaches the worker
   that did not run the job: the cross-process notification path).

    .venv/bin/python bench/scaleout.py                   # needs wrk, Redis on 127.0.0.1:6379
    BENCH_ONLY=latency .venv/bin/python bench/scaleout.py   # part 2 only

It snapshots the example pipeline into a throw-away local ZenML store.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BODY = {"parameters": {"message": "I love fast reliable tools"}}
REPS = 3
JOBS = 300
REDIS_URL = "redis://127.0.0.1:6379/0"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_idle_and_steal(seconds: float = 1.0) -> tuple[float, float]:
    def read() -> list[int]:
        return [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]

    before = read()
    time.sleep(seconds)
    delta = [b - a for a, b in zip(before, read(), strict=False)]
    total = sum(delta) or 1
    return 100 * delta[3] / total, 100 * (delta[7] if len(delta) > 7 else 0) / total


def quiet() -> tuple[float, float]:
    """Wait (up to 30 s) until the machine is mostly idle; return idle and steal percent."""
    deadline = time.monotonic() + 30
    idle, steal = cpu_idle_and_steal()
    while idle < 80 and time.monotonic() < deadline:
        idle, steal = cpu_idle_and_steal()
    return idle, steal


def snapshot(env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "zenml_serving", "snapshot", "examples.text_pipeline:text_pipeline"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


class Service:
    def __init__(self, env: dict[str, str], **extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(tempfile.mkdtemp(prefix="bench-")) / "service.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "zenml_serving", "serve"],
                cwd=ROOT,
                env={**env, "ZENML_SERVICE_HOST": "127.0.0.1", "ZENML_SERVICE_PORT": str(self.port)}
                | extra,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"service did not start: {self.log.read_text()}")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)


def wrk(url: str, seconds: int, script: Path) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", "-c32", f"-d{seconds}s", "--latency", "-s", str(script), f"{url}/invoke"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def percentile(p: str) -> float:
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50_ms": percentile("50"),
        "p99_ms": percentile("99"),
        "errors": float(errors.group(1)) if errors else 0.0,
    }


def async_latency(url: str, jobs: int) -> list[float]:
    samples = []
    # No keep-alive: a new connection per request, so that with several workers either one
    # may take it (one client object: creating one per request costs tens of ms itself).
    no_reuse = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=url, timeout=30, limits=no_reuse) as client:
        for index in range(jobs + 20):
            started = time.perf_counter()
            job = client.post("/invoke?mode=async", json=BODY).json()
            with client.stream("GET", job["stream"]) as response:
                for line in response.iter_lines():
                    if line == "event: job.completed":
                        break
            if index >= 20:  # the first 20 warm up
                samples.append((time.perf_counter() - started) * 1000)
    return samples


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    only = os.environ.get("BENCH_ONLY", "")  # "throughput" or "latency" runs one part
    if shutil.which("wrk") is None and only != "latency":
        raise SystemExit("wrk is needed (apt-get install wrk)")
    store = Path(tempfile.mkdtemp(prefix="bench-zenml-"))
    env = {
        **os.environ,
        "ZENML_CONFIG_PATH": str(store / "config"),
        "ZENML_ANALYTICS_OPT_IN": "false",
        "ZENML_LOGGING_VERBOSITY": "WARN",
        "ZENML_SERVING_SOURCE_ROOT": str(ROOT),
        "ZENML_LOG_LEVEL": "WARNING",
    }
    env.pop("ZENML_STORE_URL", None)
    env["ZENML_PIPELINE_DEPLOYMENT_ID"] = snapshot(env)
    script = store / "post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(json.dumps(BODY))}\n"
    )

    throughput: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    for rep in range(REPS if only != "latency" else 0):
        for workers in (1, 2):
            idle, steal = quiet()
            service = Service(env, ZENML_SERVING_WORKERS=str(workers))
            try:
                wrk(service.url, 2, script)
                result = wrk(service.url, 10, script)
            finally:
                service.stop()
            throughput[workers].append(result)
            print(f"rep {rep} workers={workers} idle={idle:.0f}% steal={steal:.1f}% {result}")

    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    redis = {"ZENML_SERVING_REDIS_URL": REDIS_URL, "ZENML_SERVING_REDIS_PREFIX": prefix}
    runtime = {"ZENML_SERVING_RUNTIME_DIR": str(store / "runtime")}
    backends: dict[str, dict[str, str]] = {
        "memory, 1 worker": {},
        "sqlite, 1 worker": {"ZENML_SERVING_JOB_BACKEND": "sqlite", **runtime},
        "sqlite, 2 workers": {"ZENML_SERVING_WORKERS": "2", **runtime},
        "redis, 1 worker": redis,
        "redis, 2 workers": {"ZENML_SERVING_WORKERS": "2", **redis},
    }
    latency: dict[str, list[list[float]]] = {backend: [] for backend in backends}
    for rep in range(REPS if only != "throughput" else 0):
        for backend, extra in backends.items():
            quiet()
            service = Service(env, **extra)
            try:
                samples = async_latency(service.url, JOBS)
            finally:
                service.stop()
            latency[backend].append(samples)
            print(
                f"rep {rep} backend={backend!r} p50={statistics.median(samples):.2f} ms "
                f"p99={statistics.quantiles(samples, n=100)[98]:.2f} ms"
            )
    subprocess.run(
        ["sh", "-c", f"redis-cli --scan --pattern '{prefix}*' | xargs -r redis-cli del"],
        check=False,
        capture_output=True,
    )

    if any(throughput.values()):
        print("\n| granian workers | sync req/s | p50 ms | p99 ms | errors |")
        print("| --- | --- | --- | --- | --- |")
    for workers, runs in throughput.items():
        if not runs:
            continue
        print(
            f"| {workers} | {spread([r['rps'] for r in runs])} | "
            f"{spread([r['p50_ms'] for r in runs])} | {spread([r['p99_ms'] for r in runs])} | "
            f"{int(sum(r['errors'] for r in runs))} |"
        )
    print("\n| job backend | async submit->result p50 ms | p99 ms | mean ms |")
    print("| --- | --- | --- | --- |")
    for backend, reps in latency.items():
        if not reps:
            continue
        p50s = [statistics.median(s) for s in reps]
        p99s = [statistics.quantiles(s, n=100)[98] for s in reps]
        means = [statistics.fmean(s) for s in reps]
        print(f"| {backend} | {spread(p50s)} | {spread(p99s)} | {spread(means)} |")
    shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    main()
