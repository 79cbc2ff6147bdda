#!/usr/bin/env python3
"""Job memory under large results (issue 17, defect 4): is it bounded by bytes?

One worker, in-memory job backend, default ZENML_SERVING_MAX_JOB_BYTES (128 MiB of JSON),
capture `none`: 150 async jobs of the example pipeline, each returning ~3.9 MB (its message
comes back normalised), one after the other; the worker's resident memory at the start, its
peak and at the end, how many jobs are kept, and the size of one `GET /jobs?limit=150` page.

    .venv/bin/python bench/job_memory.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scaleout import ROOT, Service, snapshot

JOBS = 150
MESSAGE = "calm " * 780_000  # ~3.9 MB


def rss_mib(pid: int) -> float:
    """Resident memory of the granian workers under `pid`."""
    workers = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    kib = 0
    for worker in workers:
        for line in Path(f"/proc/{worker}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                kib += int(line.split()[1])
    return kib / 1024


def main() -> None:
    store = Path(tempfile.mkdtemp(prefix="bench-job-memory-"))
    env = {
        **os.environ,
        "ZENML_CONFIG_PATH": str(store / "config"),
        "ZENML_ANALYTICS_OPT_IN": "false",
        "ZENML_LOGGING_VERBOSITY": "WARN",
        "ZENML_SERVING_SOURCE_ROOT": str(ROOT),
        "ZENML_LOG_LEVEL": "WARNING",
        "ZENML_SERVING_CAPTURE_DEFAULT": "none",
        "ZENML_SERVING_METRICS": "false",
    }
    env.pop("ZENML_STORE_URL", None)
    env["ZENML_PIPELINE_DEPLOYMENT_ID"] = snapshot(env)
    service = Service(env)
    try:
        client = httpx.Client(base_url=service.url, timeout=60)
        start = peak = rss_mib(service.process.pid)
        for _ in range(JOBS):
            accepted = client.post("/invoke?mode=async", json={"parameters": {"message": MESSAGE}})
            job_id = accepted.json()["job_id"]
            while client.get(f"/jobs/{job_id}").json()["status"] in ("queued", "running"):
                time.sleep(0.05)
            peak = max(peak, rss_mib(service.process.pid))
        page = client.get("/jobs", params={"limit": JOBS})
        end = rss_mib(service.process.pid)
        print(
            f"RSS start {start:.0f} MiB, peak {peak:.0f}, end {end:.0f}; kept jobs "
            f"{page.json()['total']} of {JOBS}; GET /jobs?limit={JOBS}: {len(page.content)} bytes"
        )
    finally:
        service.stop()


if __name__ == "__main__":
    main()
