"""The scenario registry: what to start, what to send, which shapes, compared with what.

A scenario is data: a function from the prepared Context to its targets, the request, the
shapes, the baseline its ratios are taken against, and the kind of measurement (`load` runs
wrk, `startup` times process start to first 200). To add one, write a `Scenario(...)` and
`register` it; a new kind of measurement is a new function in run.py's MEASURES.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench.targets import Target
from bench.wrk import Request, Shape

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["REGISTRY", "Context", "Scenario", "register"]

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
ZENML_VENV_BIN = ROOT / "bench" / ".venv-zenml" / "bin"
EXAMPLE = "examples.text_pipeline:text_pipeline"
MESSAGE = "I love fast reliable tools"
INVOKE = Request(
    method="POST", path="/invoke", body=json.dumps({"parameters": {"message": MESSAGE}})
)

LATENCY = Shape("latency", connections=1)
THROUGHPUT = Shape("throughput", connections=32)

# Identical granian flags for every granian target (BENCHMARKING.md: uvloop explicitly, one
# worker, one runtime thread, never --task-impl rust).
GRANIAN = (
    str(VENV_BIN / "granian"),
    "--interface",
    "asgi",
    "--host",
    "127.0.0.1",
    "--port",
    "{port}",
    "--workers",
    "1",
    "--runtime-threads",
    "1",
    "--loop",
    "uvloop",
    "--working-dir",
    str(ROOT),
)


@dataclass
class Context:
    """What scenarios may need, prepared once per run.py invocation (see run.py `prepare`)."""

    snapshot_id: str | None = None
    zenml_deployment_id: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Scenario:
    """One benchmark: targets, request, shapes, baseline."""

    name: str
    description: str
    targets: Callable[[Context], list[Target]]
    baseline: str
    """The target every ratio is taken against."""
    kind: str = "load"
    request: Request = INVOKE
    shapes: tuple[Shape, ...] = (LATENCY, THROUGHPUT)
    needs: frozenset[str] = frozenset()
    """Context to prepare: "snapshot", "zenml_deployment"."""
    expect_non_2xx: bool = False
    """Overload scenarios expect 429s; otherwise a non-2xx response marks the run failed."""
    extra_ratios: tuple[tuple[str, str], ...] = ()
    """More (target, reference) pairs to print ratios for, besides target vs baseline."""


REGISTRY: dict[str, Scenario] = {}


def register(scenario: Scenario) -> Scenario:
    """Add `scenario` to the registry (names are unique)."""
    if scenario.name in REGISTRY:
        raise ValueError(f"scenario {scenario.name!r} registered twice")
    REGISTRY[scenario.name] = scenario
    return scenario


# -- targets -------------------------------------------------------------------------------


def ours(ctx: Context, name: str = "zenml-serving", **env: str) -> Target:
    """zenml-serving on the snapshot, under the shared granian flags, capture off by default."""
    assert ctx.snapshot_id, "prepare the snapshot first"
    settings = {
        "ZENML_PIPELINE_DEPLOYMENT_ID": ctx.snapshot_id,
        "ZENML_SERVICE_PORT": "{port}",
        # The "capture off" case: a config line, so capture modes are a small addition.
        "ZENML_SERVING_CAPTURE_DEFAULT": "none",
    }
    settings.update(env)
    return Target(
        name=name,
        argv=(*GRANIAN, "--factory", "zenml_serving.app:create_app"),
        env=settings,
        description="zenml-serving `POST /invoke` running text_pipeline's 3 steps in-process",
    )


def raw_asgi(_: Context) -> Target:
    """Baseline (a): the Python + granian ceiling."""
    return Target(
        name="raw-asgi",
        argv=(*GRANIAN, "bench.baselines.raw_asgi:app"),
        description="raw ASGI app, msgspec JSON in/out, trivial work (bench/baselines)",
    )


def bare_litestar(_: Context) -> Target:
    """Baseline (b): the framework ceiling."""
    return Target(
        name="bare-litestar",
        argv=(*GRANIAN, "bench.baselines.bare_litestar:app"),
        description="bare Litestar, one POST endpoint, same JSON in/out (bench/baselines)",
    )


# ZenML's server takes ~1 s per call and runs calls one at a time (measured here: c1 0.86
# req/s, p50 1.09 s; c4 0.80 req/s, p50 4.7 s), because it runs its local orchestrator and
# writes the run to the store. So it gets fewer connections, longer runs, a long request
# timeout and a bound on the number of requests; ratios against it are still per shape name.
ZENML_SHAPES = {
    "latency": {"duration_s": 20.0, "warmup_s": 3.0, "timeout_s": 30.0, "max_requests": 60},
    "throughput": {
        "connections": 4,
        "duration_s": 40.0,
        "warmup_s": 6.0,
        "timeout_s": 60.0,
        "max_requests": 120,
    },
}


def zenml_server(ctx: Context) -> Target:
    """Baseline (c): ZenML 0.98's own deployment server (FastAPI + uvicorn) on the snapshot."""
    assert ctx.zenml_deployment_id, "prepare the ZenML deployment record first"
    return Target(
        name="zenml-0.98-server",
        argv=(
            str(ZENML_VENV_BIN / "python"),
            "-m",
            "zenml.deployers.server.app",
            "--deployment_id",
            ctx.zenml_deployment_id,
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
        ),
        description=(
            "ZenML 0.98 deployment server (zenml.deployers.server, FastAPI/uvicorn, its "
            "defaults) on the same snapshot, started as the local deployer starts it"
        ),
        shape_overrides=ZENML_SHAPES,
    )


def _core_targets(ctx: Context) -> list[Target]:
    targets = [ours(ctx), bare_litestar(ctx), raw_asgi(ctx)]
    if ctx.zenml_deployment_id:
        targets.append(zenml_server(ctx))
    return targets


def _granian_targets(ctx: Context) -> list[Target]:
    return [ours(ctx), bare_litestar(ctx), raw_asgi(ctx)]


# -- scenarios -----------------------------------------------------------------------------

register(
    Scenario(
        name="core",
        description=(
            "`POST /invoke` on text_pipeline vs bare Litestar, raw ASGI and ZenML 0.98's own "
            "server on the same snapshot"
        ),
        targets=_core_targets,
        baseline="bare-litestar",
        needs=frozenset({"snapshot", "zenml_deployment"}),
        extra_ratios=(("zenml-0.98-server", "zenml-serving"), ("raw-asgi", "zenml-serving")),
    )
)

register(
    Scenario(
        name="framework",
        description="the granian targets of `core` only (no ZenML server): quick A/B checks",
        targets=_granian_targets,
        baseline="bare-litestar",
        needs=frozenset({"snapshot"}),
    )
)

register(
    Scenario(
        name="startup",
        description="process start to first 200 on the readiness URL, ours vs ZenML's server",
        targets=lambda ctx: [
            ours(ctx),
            *([zenml_server(ctx)] if ctx.zenml_deployment_id else []),
            bare_litestar(ctx),
        ],
        baseline="zenml-0.98-server",
        kind="startup",
        needs=frozenset({"snapshot", "zenml_deployment"}),
    )
)

register(
    Scenario(
        name="capture",
        description=(
            "capture modes none vs metadata vs full (meaningful once capture policies land; "
            "until then the three targets run identical code)"
        ),
        targets=lambda ctx: [
            ours(ctx, f"capture-{mode}", ZENML_SERVING_CAPTURE_DEFAULT=mode)
            for mode in ("none", "metadata", "full")
        ],
        baseline="capture-none",
        needs=frozenset({"snapshot"}),
    )
)


def _gc_targets(_: Context) -> list[Target]:
    factory = "bench.baselines.gc_variants:litestar_app"
    return [
        Target(
            name=f"litestar-gc-{mode.split(':')[0]}",
            argv=(*GRANIAN, "--factory", factory),
            env={"BENCH_GC": mode},
            description=f"bare Litestar with BENCH_GC={mode} (bench/baselines/gc_variants.py)",
        )
        for mode in ("default", "freeze", "off")
    ] + [raw_asgi(_)]


register(
    Scenario(
        name="litestar-p99",
        description=(
            "the open question: bare Litestar's p99 at 32 connections under granian with the "
            "garbage collector as is, frozen after startup, and off; raw ASGI for reference"
        ),
        targets=_gc_targets,
        baseline="litestar-gc-default",
        shapes=(THROUGHPUT,),
    )
)


def _serving_gc_targets(ctx: Context) -> list[Target]:
    assert ctx.snapshot_id, "prepare the snapshot first"
    return [
        Target(
            name=f"serving-gc-{mode}",
            argv=(*GRANIAN, "--factory", "bench.baselines.gc_variants:serving_app"),
            env={**ours(ctx).env, "BENCH_GC": mode},
            description=f"zenml-serving with BENCH_GC={mode} (bench/baselines/gc_variants.py)",
        )
        for mode in ("default", "freeze", "off")
    ]


register(
    Scenario(
        name="serving-gc",
        description="zenml-serving with the garbage collector as is, frozen after startup, off",
        targets=_serving_gc_targets,
        baseline="serving-gc-default",
        needs=frozenset({"snapshot"}),
    )
)


register(
    Scenario(
        name="serving-concurrency",
        description=(
            "zenml-serving with ZENML_SERVING_MAX_CONCURRENCY 1 / default (CPUs x 5) / 32: "
            "what the worker-thread hop and its GIL hand-offs cost"
        ),
        targets=lambda ctx: [
            ours(ctx, "serving-conc-1", ZENML_SERVING_MAX_CONCURRENCY="1"),
            ours(ctx, "serving-conc-default"),
            ours(ctx, "serving-conc-32", ZENML_SERVING_MAX_CONCURRENCY="32"),
        ],
        baseline="serving-conc-default",
        needs=frozenset({"snapshot"}),
    )
)


_BENCH_KEY = "bench-key-0123456789abcdef"


def _hardening_targets(ctx: Context) -> list[Target]:
    """Now, now with an auth key, and (when BENCH_BASELINE_SRC names the `src/` of an earlier
    checkout, e.g. a `git worktree` of the commit before the hardening) the code before."""
    targets = [
        ours(ctx, "serving"),
        ours(ctx, "serving-auth", ZENML_SERVING_AUTH_KEY=_BENCH_KEY),
    ]
    baseline_src = os.environ.get("BENCH_BASELINE_SRC")
    if baseline_src:
        before = ours(ctx, "serving-before", PYTHONPATH=baseline_src)
        targets.insert(0, before)
    return targets


register(
    Scenario(
        name="hardening",
        description=(
            "what the request guards cost: zenml-serving now, now with an auth key, and the "
            "code before them (BENCH_BASELINE_SRC=<earlier checkout>/src)"
        ),
        targets=_hardening_targets,
        baseline="serving-before" if os.environ.get("BENCH_BASELINE_SRC") else "serving",
        request=Request(
            method="POST",
            path="/invoke",
            body=INVOKE.body,
            headers=(
                ("Content-Type", "application/json"),
                ("Authorization", f"Bearer {_BENCH_KEY}"),
            ),
        ),
        needs=frozenset({"snapshot"}),
    )
)


def _request_path_targets(ctx: Context) -> list[Target]:
    """Bare Litestar, zenml-serving now, and (when BENCH_BASELINE_SRC names the `src/` of an
    earlier checkout) the code before: the paired A/B of a request-path change."""
    targets = [bare_litestar(ctx), ours(ctx, "serving")]
    baseline_src = os.environ.get("BENCH_BASELINE_SRC")
    if baseline_src:
        targets.insert(1, ours(ctx, "serving-before", PYTHONPATH=baseline_src))
    return targets


register(
    Scenario(
        name="request-path",
        description=(
            "sync `POST /invoke` vs bare Litestar (issue 19's goals: p50 <= 1.3x at c1, "
            "throughput >= 0.7x at c32), and the code before a change "
            "(BENCH_BASELINE_SRC=<earlier checkout>/src)"
        ),
        targets=_request_path_targets,
        baseline="bare-litestar",
        needs=frozenset({"snapshot"}),
        extra_ratios=(("serving", "serving-before"),)
        if os.environ.get("BENCH_BASELINE_SRC")
        else (),
    )
)
