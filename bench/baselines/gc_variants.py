"""App factories with the garbage collector tuned by BENCH_GC, to test the GC-pause suspect.

    BENCH_GC=default | freeze | off | threshold:<gen0>[,<gen1>,<gen2>]

`freeze` moves everything alive after the app is built into the permanent generation
(gc.freeze()), so collections stop walking the framework's and ZenML's import-time objects;
`off` disables the cyclic collector (an upper bound on what GC costs: never for production);
`threshold:` sets gc.set_threshold. Used by the `gc` scenario in scenarios.py:

    granian ... --factory bench.baselines.gc_variants:litestar_app
    granian ... --factory bench.baselines.gc_variants:serving_app

The factories also count collections and their pause times (gc.callbacks) and log the
totals to stderr at shutdown (in the server's log under bench/results/).
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import time
from typing import Any

__all__ = ["litestar_app", "serving_app"]

_pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
_started: list[float] = []
_reported: list[bool] = []


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started.append(time.perf_counter())
    elif _started:
        _pauses[info["generation"]].append(time.perf_counter() - _started.pop())


def _report() -> None:
    if _reported:
        return
    _reported.append(True)
    for gen, pauses in _pauses.items():
        if pauses:
            ordered = sorted(pauses)
            print(
                f"bench-gc: gen{gen} collections={len(pauses)} total={sum(pauses) * 1000:.1f}ms "
                f"p50={ordered[len(ordered) // 2] * 1000:.3f}ms max={ordered[-1] * 1000:.3f}ms",
                file=sys.stderr,
                flush=True,
            )


def _tune() -> None:
    mode = os.environ.get("BENCH_GC", "default")
    gc.callbacks.append(_on_gc)
    atexit.register(_report)
    if mode == "freeze":
        gc.collect()
        gc.freeze()
    elif mode == "off":
        gc.disable()
    elif mode.startswith("threshold:"):
        gc.set_threshold(*(int(v) for v in mode.split(":", 1)[1].split(",")))
    elif mode != "default":
        raise ValueError(f"BENCH_GC={mode!r}: default | freeze | off | threshold:<n>[,<n>,<n>]")
    print(f"bench-gc: mode={mode} threshold={gc.get_threshold()}", file=sys.stderr, flush=True)


def litestar_app() -> Any:
    """The bare Litestar baseline, then the GC tuning."""
    from bench.baselines.bare_litestar import app

    _tune()
    app.on_shutdown.append(_report)
    return app


def serving_app() -> Any:
    """zenml-serving's create_app(), then the GC tuning."""
    from zenml_serving.app import create_app

    app = create_app()
    _tune()
    app.on_shutdown.append(_report)
    return app
