"""Operational endpoints: `/health`, `/info`, `/status`."""

from __future__ import annotations

import time
from typing import Any

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec

from zenml_serving import __version__
from zenml_serving.api.context import AppContext
from zenml_serving.api.responses import problem_responses
from zenml_serving.api.schemas import Health
from zenml_serving.deployment.model import FromLiteral, FromParameter, FromStepOutput, InputBinding

__all__ = ["health", "info", "status"]


@get(
    "/health",
    summary="Liveness and readiness",
    tags=["ops"],
    responses={
        # Not a problem: probes and dashboards read the same body whatever the status.
        503: ResponseSpec(
            Health,
            description="Draining for shutdown or not ready yet (`status`: `unavailable`)",
            generate_examples=False,
        )
    },
)
async def health(ctx: NamedDependency[AppContext]) -> Response[Health]:
    """200 while the deployment is loaded and requests are admitted; 503 while draining."""
    ready = ctx.ready and ctx.manager.accepting
    body = Health(
        status="ok" if ready else "unavailable",
        deployment_loaded=True,
        accepting=ctx.manager.accepting,
        uptime_s=round(time.time() - ctx.started_at, 3),
        pipeline=ctx.pipeline.name,
        snapshot_id=str(ctx.pipeline.snapshot_id),
    )
    return Response(body, status_code=200 if ready else 503)


def _binding(binding: InputBinding) -> dict[str, Any]:
    if isinstance(binding, FromParameter):
        return {"from": "parameter", "parameter": binding.name}
    if isinstance(binding, FromStepOutput):
        return {"from": "step", "step": binding.step, "output": binding.output}
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
    """What is served: the pipeline, its steps in order, parameters, outputs, snapshot."""
    pipeline = ctx.pipeline
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
    return {
        "config": ctx.config.public_view(),
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
            "totals": {
                "completed": stats.completed,
                "failed": stats.failed,
                "cancelled": stats.cancelled,
                "timed_out": stats.timed_out,
                "rejected": stats.rejected,
            },
        },
        "tracking": _tracking_status(ctx),
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
        },
    }
