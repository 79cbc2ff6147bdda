#!/usr/bin/env python3
"""Throughput cost of tracing + metrics: the same service with both off (A) and on (B).

    .venv/bin/python otel/measure_overhead.py [--reps 3] [--seconds 10] [--connections 32]

A: OTEL_SDK_DISABLED=true, ZENML_SERVING_METRICS=false.
B: spans exported over OTLP/HTTP to a local sink (a loopback HTTP server answering 200, so
   the exporter really serializes and sends), metrics on and scraped every 5 s.
Both: one granian worker, uvloop, --runtime-threads 1, access log on (logs go to /dev/null),
capture mode `metadata`, ZenML run tracking off, the README's example pipeline (3 steps), wrk
POSTing /invoke.
Runs alternate A B A B ... so drift cancels (see shared/BENCHMARKING.md); the server is
pinned to core 0 and wrk to core 1 when `taskset` exists. Prints the median and min-max of
requests/s, p50 and p99 per variant, and B/A throughput. The target: B >= 0.85 x A.

Loopback only; every run is bounded by --seconds; every process started is stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
EXAMPLE = "examples.text_pipeline:text_pipeline"

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"parameters": {"message": "ZenML serving is fast and simple and reliable"}}'
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local out = io.open(os.getenv("WRK_SUMMARY"), "w")
  out:write(string.format(
    '{"requests": %d, "seconds": %f, "p50_ms": %f, "p99_ms": %f, "errors": %d, "non2xx": %d}',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
  out:close()
end
"""


class _Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _pin(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if shutil.which("taskset") else []


def _snapshot(env: dict[str, str]) -> str:
    result = subprocess.run(  # noqa: S603 - our own venv's binary
        [str(BIN / "zenml-serving"), "snapshot", EXAMPLE],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip().splitlines()[-1]


def _serve(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    command = [
        *_pin(0),
        str(BIN / "granian"),
        "--interface",
        "asgi",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--runtime-threads",
        "1",
        "--loop",
        "uvloop",
        "zenml_serving.app:create_app",
    ]
    server = subprocess.Popen(  # noqa: S603 - our own venv's binaries
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the service did not become ready")


def _wrk(
    port: int, seconds: int, connections: int, script: Path, summary: Path
) -> dict[str, float]:
    env = {**os.environ, "WRK_SUMMARY": str(summary)}
    base = [*_pin(1), "wrk", "-t1", f"-c{connections}", "--timeout=5s", "-s", str(script)]
    url = f"http://127.0.0.1:{port}/invoke"
    for duration in ("2s", f"{seconds}s"):  # a warm-up, then the measured run
        subprocess.run([*base, f"-d{duration}", url], env=env, check=True, capture_output=True)  # noqa: S603
    result: dict[str, float] = json.loads(summary.read_text())
    result["rps"] = result["requests"] / result["seconds"]
    return result


def _scrape_forever(port: int, stop: threading.Event) -> None:
    while not stop.wait(5):
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()


def main() -> int:  # noqa: PLR0915 - a script, read top to bottom
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["A off", "B on"],
        help='which to run, in this order each repetition (default: "A off" "B on")',
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed (Debian package `wrk`)")

    work = Path(tempfile.mkdtemp(prefix="zenml-serving-overhead-"))
    env = {
        **os.environ,
        "ZENML_CONFIG_PATH": str(work / "zenml"),
        "ZENML_ANALYTICS_OPT_IN": "false",
        "ZENML_LOGGING_VERBOSITY": "WARN",
        "ZENML_SERVING_SOURCE_ROOT": str(ROOT),
        "ZENML_SERVING_CAPTURE_DEFAULT": "metadata",
        # ZenML run tracking has its own cost and its own benchmark: off in both variants.
        "ZENML_SERVING_CREATE_RUNS": "false",
        "ZENML_SERVING_LOG_FORMAT": "json",
    }
    env["ZENML_PIPELINE_DEPLOYMENT_ID"] = _snapshot(env)
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    sink_url = f"http://127.0.0.1:{sink.server_address[1]}"
    every = {
        "A off": {"OTEL_SDK_DISABLED": "true", "ZENML_SERVING_METRICS": "false"},
        "B on": {"OTEL_EXPORTER_OTLP_ENDPOINT": sink_url, "ZENML_SERVING_METRICS": "true"},
        # Breakdown variants (--variants), to see where a cost comes from:
        "metrics only": {"OTEL_SDK_DISABLED": "true", "ZENML_SERVING_METRICS": "true"},
        "spans, no exporter": {"ZENML_SERVING_METRICS": "false"},
        "spans + exporter": {
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink_url,
            "ZENML_SERVING_METRICS": "false",
        },
        "spans, no exporter, 10% sampled": {
            "ZENML_SERVING_METRICS": "false",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.1",
        },
        "spans + exporter, none sampled": {
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink_url,
            "ZENML_SERVING_METRICS": "false",
            "OTEL_TRACES_SAMPLER": "parentbased_always_off",
        },
        "B on, 1% sampled": {
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink_url,
            "ZENML_SERVING_METRICS": "true",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.01",
        },
        "B on, 10% sampled": {
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink_url,
            "ZENML_SERVING_METRICS": "true",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.1",
        },
    }
    variants = {name: every[name] for name in args.variants}
    script = work / "post.lua"
    script.write_text(WRK_SCRIPT)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    try:
        for rep in range(args.reps):
            for name, extra in variants.items():
                port = _free_port()
                server = _serve({**env, **extra}, port)
                stop = threading.Event()
                scraper = threading.Thread(target=_scrape_forever, args=(port, stop))
                if extra.get("ZENML_SERVING_METRICS") == "true":
                    scraper.start()
                try:
                    run = _wrk(port, args.seconds, args.connections, script, work / "out.json")
                finally:
                    stop.set()
                    if scraper.is_alive():
                        scraper.join()
                    server.terminate()
                    server.wait(30)
                results[name].append(run)
                print(
                    f"rep {rep + 1} {name}: {run['rps']:.0f} req/s, p50 {run['p50_ms']:.2f} ms, "
                    f"p99 {run['p99_ms']:.2f} ms, errors {run['errors']:.0f}+{run['non2xx']:.0f}",
                    flush=True,
                )
    finally:
        sink.shutdown()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nwrk -t1 -c{args.connections} -d{args.seconds}s, {args.reps} reps, A/B alternating")
    print("| variant | req/s median (min-max) | p50 ms | p99 ms |")
    print("| --- | --- | --- | --- |")
    medians = {}
    for name, runs in results.items():
        rps = [r["rps"] for r in runs]
        medians[name] = statistics.median(rps)
        print(
            f"| {name} | {medians[name]:.0f} ({min(rps):.0f}-{max(rps):.0f}) "
            f"| {statistics.median(r['p50_ms'] for r in runs):.2f} "
            f"| {statistics.median(r['p99_ms'] for r in runs):.2f} |"
        )
    baseline = medians.get("A off")
    for name, median in medians.items():
        if baseline and name != "A off":
            ratio = median / baseline
            print(f"{name} / A off: {ratio:.3f} ({(1 - ratio) * 100:.1f}% cost; target <= 15%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
