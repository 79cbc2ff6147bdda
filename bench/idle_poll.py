#!/usr/bin/env python3
"""What the SQLite job backend's cross-process poll costs while nothing happens (issue 22).

Two granian workers, no Redis (the SQLite store), and beside it the same with Redis
(pub/sub: no poll) as the baseline. Per run: ten async jobs that sleep in their step for
40 s, and an SSE stream open on each through the shared port, so both workers have local
unfinished jobs and waiting subscribers (the poller's busiest idle state); then the CPU
seconds both workers use over 20 quiet seconds, from /proc/<pid>/stat (utime + stime).
Also the same service with no job at all (the poller asleep). 3 repetitions, A and B
alternating.

    .venv/bin/python bench/idle_poll.py      # needs Redis on 127.0.0.1:6379
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scaleout import REDIS_URL, ROOT, Service, quiet

REPS = 3
JOBS = 10
WINDOW_S = 20.0
TICKS = os.sysconf("SC_CLK_TCK")


def snapshot(env: dict[str, str]) -> str:

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "zenml_serving",
            "snapshot",
            "tests.pipelines.faults:fault_pipeline",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def workers_of(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children]


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def follow(url: str, stop: threading.Event) -> None:
    with httpx.stream("GET", url, timeout=None) as response:
        for _ in response.iter_lines():
            if stop.is_set():
                return


def measure(service: Service, with_streams: bool) -> float:
    stop = threading.Event()
    threads = []
    if with_streams:
        for _ in range(JOBS):
            job = httpx.post(
                f"{service.url}/invoke?mode=async",
                json={"parameters": {"fault": "hang", "seconds": 40.0}},
                timeout=30,
            ).json()
            thread = threading.Thread(
                target=follow, args=(f"{service.url}{job['stream']}", stop), daemon=True
            )
            thread.start()
            threads.append(thread)
    time.sleep(3.0)  # let startup and submission settle
    pids = workers_of(service.process.pid)
    before = cpu_seconds(pids)
    time.sleep(WINDOW_S)
    used = cpu_seconds(pids) - before
    stop.set()
    return 100 * used / WINDOW_S


def main() -> None:
    store = Path(tempfile.mkdtemp(prefix="bench-idle-"))
    env = {
        **os.environ,
        "ZENML_CONFIG_PATH": str(store / "config"),
        "ZENML_ANALYTICS_OPT_IN": "false",
        "ZENML_LOGGING_VERBOSITY": "WARN",
        "ZENML_SERVING_SOURCE_ROOT": str(ROOT),
        "ZENML_LOG_LEVEL": "WARNING",
        "ZENML_SERVING_CREATE_RUNS": "false",
        "ZENML_SERVING_METRICS": "false",
        "ZENML_SERVING_SHUTDOWN_GRACE": "1",
    }
    env.pop("ZENML_STORE_URL", None)
    env["ZENML_PIPELINE_DEPLOYMENT_ID"] = snapshot(env)
    prefix = f"bench-idle-{uuid.uuid4().hex[:8]}"
    configs = {
        "sqlite": {"ZENML_SERVING_RUNTIME_DIR": str(store / "runtime")},
        "redis": {"ZENML_SERVING_REDIS_URL": REDIS_URL, "ZENML_SERVING_REDIS_PREFIX": prefix},
    }
    results: dict[tuple[str, bool], list[float]] = {}
    for rep in range(REPS):
        for name, extra in configs.items():
            for with_streams in (False, True):
                quiet()
                service = Service(env, ZENML_SERVING_WORKERS="2", **extra)
                try:
                    percent = measure(service, with_streams)
                finally:
                    service.stop()
                results.setdefault((name, with_streams), []).append(percent)
                print(f"rep {rep} {name} streams={with_streams}: {percent:.2f} % of one core")
    print(
        f"\n| job backend (2 workers) | state | CPU, % of one core, both workers ({REPS} x "
        f"{WINDOW_S:.0f} s: median (min-max)) |"
    )
    print("| --- | --- | --- |")
    for (name, with_streams), values in results.items():
        state = f"{JOBS} jobs running, {JOBS} SSE streams waiting" if with_streams else "no job"
        print(
            f"| {name} | {state} | {statistics.median(values):.2f} "
            f"({min(values):.2f}-{max(values):.2f}) |"
        )
    shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    main()
