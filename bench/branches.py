"""What running independent branches at once costs and saves, in-process (no HTTP).

    .venv/bin/python bench/branches.py

`engine.run` of a fan-out pipeline (prepare -> three branches -> join) with
`step_concurrency` 1 (one after another) and 4 (branches on helper threads), alternating, on
one core: with trivial branches (the hand-off to helper threads is pure cost) and with
branches that each wait 5 ms (`time.sleep`, as an I/O-bound tool call would). Median and
min-max over `--repeats` rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.builders import param, pipeline_of, step_of, upstream  # noqa: E402

from zenml_serving.engine.engine import DirectExecutionEngine  # noqa: E402

if TYPE_CHECKING:
    from zenml_serving.deployment.model import ServedPipeline


def fan_out(wait_s: float) -> ServedPipeline:
    def prepare(text: str) -> str:
        return text

    def branch(value: str) -> str:
        if wait_s:
            time.sleep(wait_s)
        return value

    def join(a: str, b: str, c: str) -> str:
        return a + b + c

    return pipeline_of(
        step_of(prepare, text=param("text")),
        *(step_of(branch, name, value=upstream("prepare")) for name in "abc"),
        step_of(join, a=upstream("a"), b=upstream("b"), c=upstream("c")),
        parameters={"text": (str, "x")},
    )


def per_run(engine: DirectExecutionEngine, runs: int) -> float:
    started = time.perf_counter()
    for _ in range(runs):
        engine.run({"text": "x"})
    return (time.perf_counter() - started) / runs


def compare(wait_s: float, runs: int, repeats: int) -> dict[str, Any]:
    pipeline = fan_out(wait_s)
    engines = {n: DirectExecutionEngine(pipeline, step_concurrency=n) for n in (1, 4)}
    for engine in engines.values():
        per_run(engine, max(1, runs // 10))  # warm-up (helper threads started)
    samples: dict[int, list[float]] = {1: [], 4: []}
    for _ in range(repeats):
        for n, engine in engines.items():
            samples[n].append(per_run(engine, runs))
    return {
        f"concurrency_{n}_us": {
            "median": round(statistics.median(v) * 1e6, 1),
            "min": round(min(v) * 1e6, 1),
            "max": round(max(v) * 1e6, 1),
        }
        for n, v in samples.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    print("trivial branches:", compare(0.0, 2000, args.repeats))
    print("branches waiting 5 ms:", compare(0.005, 20, args.repeats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
