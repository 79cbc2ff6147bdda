"""Operational endpoints: `/health` (readiness), `/livez` (liveness), `/info`, `/status`.

`/health` answers 200 only while this process should get traffic: started, not draining,
its event loop responsive and not every execution slot held by an abandoned (timed-out or
cancelled, still running) step. `/livez` answers 200 unless the process is wedged (loop lag
or every slot abandoned): a restart is then the only way to get the capacity back. Both stay
open when an auth key is set, and then say nothing about the pipeline.
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec

from zenml_serving import __version__
from zenml_serving.api.context import AppContext
from zenml_serving.api.responses import problem_responses
from zenml_serving.api.schemas import Health, HealthCheck, Liveness
from zenml_serving.api.security import EXCLUDE_FROM_AUTH
from zenml_serving.deployment.model import (
    FromArtifact,
    FromLiteral,
    FromParameter,
    FromStepOutput,
    InputBinding,
)
from zenml_serving.engine.chunks import chunk_totals
from zenml_serving.engine.context import metadata_counts

__all__ = ["health", "info", "livez", "status"]


_OPEN = {EXCLUDE_FROM_AUTH: True}


def _wedge_checks(ctx: AppContext) -> dict[str, HealthCheck]:
    slots = ctx.manager.slots
    lag = ctx.loop_monitor.lag_s
    return {
        "event_loop": HealthCheck(
            ok=lag <= ctx.config.health_max_loop_lag_s,
            lag_s=round(lag, 4),
            max_lag_s=ctx.config.health_max_loop_lag_s,
        ),
        "executor": HealthCheck(
            ok=slots.orphaned < slots.limit,
            in_flight=slots.in_use,
            capacity=slots.limit,
            abandoned_still_running=slots.orphaned,
        ),
    }


@get(
    "/health",
    summary="Readiness: should this process get traffic",
    tags=["ops"],
    opt=_OPEN,
    responses={
        # Not a problem: probes and dashboards read the same body whatever the status.
        503: ResponseSpec(
            Health,
            description="Starting, draining or wedged (`status`: `unavailable`; `checks` "
            "say which)",
            generate_examples=False,
        )
    },
)
async def health(ctx: NamedDependency[AppContext]) -> Response[Health]:
    """200 while started, admitting requests and not wedged; 503 (with the failing checks)
    while starting, draining, or wedged."""
    checks = _wedge_checks(ctx)
    checks["admitting"] = HealthCheck(ok=ctx.ready and ctx.manager.accepting)
    ready = all(check.ok for check in checks.values())
    named = ctx.config.auth_key is None  # open to probes: with auth on, it names nothing
    body = Health(
        status="ok" if ready else "unavailable",
        deployment_loaded=True,
        accepting=ctx.manager.accepting,
        checks=checks,
        uptime_s=round(time.time() - ctx.started_at, 3),
        pipeline=ctx.pipeline.name if named else None,
        snapshot_id=str(ctx.pipeline.snapshot_id) if named else None,
    )
    return Response(body, status_code=200 if ready else 503)


@get(
    "/livez",
    summary="Liveness: is this process wedged",
    tags=["ops"],
    opt=_OPEN,
    responses={
        503: ResponseSpec(
            Liveness,
            description="Wedged: event-loop lag past the threshold or every slot abandoned",
            generate_examples=False,
        )
    },
)
async def livez(ctx: NamedDependency[AppContext]) -> Response[Liveness]:
    """200 unless the event loop lags past the threshold or every slot is held by an abandoned
    step (draining is alive: it must not be restarted mid-drain)."""
    checks = _wedge_checks(ctx)
    alive = all(check.ok for check in checks.values())
    return Response(
        Liveness(status="ok" if alive else "wedged", checks=checks),
        status_code=200 if alive else 503,
    )


def _binding(binding: InputBinding) -> dict[str, Any]:
    if isinstance(binding, FromParameter):
        return {"from": "parameter", "parameter": binding.name}
    if isinstance(binding, FromStepOutput):
        return {"from": "step", "step": binding.step, "output": binding.output}
    if isinstance(binding, FromArtifact):
        artifact = binding.artifact
        return {
            "from": "artifact",
            "artifact": artifact.name,
            "version": artifact.version,
            "id": str(artifact.id),
        }
    if isinstance(binding, FromLiteral):
        return {"from": "literal"}
    raise TypeError(binding)


@get(
    "/info",
    summary="Pipeline, steps and parameter schema",
    tags=["ops"],
    responses=problem_responses(401),
)
async def info(ctx: NamedDependency[AppContext]) -> dict[str, Any]:
    """What is served: the pipeline, its steps in order, parameters, outputs, snapshot, and the
    served version: the artifact and model versions loaded, on_init, when it was loaded."""
    current = ctx.versions.current
    pipeline = current.pipeline
    return {
        "pipeline": {
            "name": pipeline.name,
            "parameters_schema": pipeline.parameter_schema(),
            "outputs": [
                {"name": o.name, "step": o.step, "output": o.output} for o in pipeline.outputs
            ],
        },
        "steps": [
            {
                "name": step.name,
                "source": step.source,
                "upstream": list(step.upstream),
                "inputs": {arg: _binding(b) for arg, b in step.inputs.items()},
                "outputs": list(step.outputs),
                "retries": step.retry.max_retries if step.retry else 0,
            }
            for step in pipeline.steps
        ],
        "snapshot": {
            "id": str(pipeline.snapshot_id),
            "name": pipeline.snapshot_name,
            "loaded_from": pipeline.source_kind,
            "deployment_id": str(pipeline.deployment_id) if pipeline.deployment_id else None,
            "project_id": str(pipeline.project_id) if pipeline.project_id else None,
            "stack_id": str(pipeline.stack_id) if pipeline.stack_id else None,
            "zenml_version": pipeline.zenml_version,
        },
        "served_version": {
            **current.describe(),
            "in_use": {str(number): count for number, count in ctx.versions.in_use().items()},
            "last_reload": ctx.reloader.last.describe() if ctx.reloader.last else None,
        },
        "service": {"name": "zenml-serving", "version": __version__},
    }


@get(
    "/status",
    summary="Effective configuration and execution state",
    tags=["ops"],
    responses=problem_responses(401),
)
async def status(ctx: NamedDependency[AppContext]) -> dict[str, Any]:
    """The configuration in effect (nothing secret), the job backend (shared or this process
    only), and this process's execution state and counters."""
    manager = ctx.manager
    slots = manager.slots
    stats = manager.stats
    config = ctx.config.public_view()
    # Where granian listens is its own setting (`granian --host/--port` bypass these
    # variables): the environment's values could be wrong, so they are not shown.
    config.pop("host", None)
    config.pop("port", None)
    return {
        "config": config,
        "job_backend": manager.jobs.describe(),
        "execution": {
            "scope": "per process",
            "note": "the concurrency limit and the queue are this process's own: every "
            "worker and replica has its own (total capacity = processes x capacity)",
            "owner": manager.owner,
            "capacity": slots.limit,
            "in_flight": slots.in_use,
            "queued": slots.waiting,
            "queue_capacity": slots.max_waiting,
            "orphaned": slots.orphaned,
            "accepting": manager.accepting,
            "open_streams": ctx.streams.open,
            "stream_capacity": ctx.streams.max_total,
            "totals": {
                "completed": stats.completed,
                "failed": stats.failed,
                "cancelled": stats.cancelled,
                "timed_out": stats.timed_out,
                "rejected": stats.rejected,
            },
        },
        "tracking": _tracking_status(ctx),
        "step_metadata": {
            "recorded": metadata_counts.recorded,
            "not_recorded": metadata_counts.not_recorded,
        },
        "chunks": {"emitted": chunk_totals.emitted, "dropped": chunk_totals.dropped},
        "uptime_s": round(time.time() - ctx.started_at, 3),
    }


def _tracking_status(ctx: AppContext) -> dict[str, Any]:
    writer = ctx.tracking
    if writer is None:
        return {"enabled": False}
    stats = writer.stats
    return {
        "enabled": True,
        "queue_depth": writer.depth,
        "queue_capacity": ctx.config.tracking_queue_size,
        "written": stats.written,
        "dropped": {
            "queue_full": stats.dropped_full,
            "write_failed": stats.dropped_failed,
            "shutdown": stats.dropped_shutdown,
            "writer_lost": stats.dropped_lost,
        },
    }
