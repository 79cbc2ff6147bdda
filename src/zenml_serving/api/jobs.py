"""`/jobs`: list, inspect and cancel async jobs."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from zenml_serving.api.context import AppContext
from zenml_serving.api.errors import problem
from zenml_serving.api.responses import DocumentedOperation, problem_responses
from zenml_serving.api.schemas import JobList, JobSummary, JobView

__all__ = ["cancel_job", "get_job", "list_jobs"]

JobStatusFilter = Literal["queued", "running", "completed", "failed", "cancelled", "timed_out"]


def _not_found(job_id: str) -> Exception:
    return problem(
        404,
        "not-found",
        "Unknown job",
        f"no job '{job_id}'; finished jobs are kept for ZENML_SERVING_JOB_TTL seconds",
        job_id=job_id,
    )


@get(
    "/jobs",
    summary="List async jobs, newest first (outputs: GET /jobs/{id})",
    tags=["jobs"],
    responses=problem_responses(400, 401, 422, 503),
    operation_class=DocumentedOperation,
)
async def list_jobs(
    ctx: NamedDependency[AppContext],
    status: Annotated[JobStatusFilter | None, QueryParameter(name="status")] = None,
    limit: Annotated[int, QueryParameter(name="limit", ge=1, le=500)] = 50,
    offset: Annotated[int, QueryParameter(name="offset", ge=0)] = 0,
) -> JobList:
    """A page of jobs, optionally only those in `status`, without their outputs."""
    records, total = await ctx.manager.jobs.query(status=status, limit=limit, offset=offset)
    return JobList(
        jobs=[JobSummary.of(r) for r in records], total=total, limit=limit, offset=offset
    )


@get(
    "/jobs/{job_id:str}",
    summary="One job: status, steps, outputs or error",
    tags=["jobs"],
    responses=problem_responses(400, 401, 404, 503),
    operation_class=DocumentedOperation,
)
async def get_job(job_id: FromPath[str], ctx: NamedDependency[AppContext]) -> JobView:
    """The job's current state."""
    record = await ctx.manager.jobs.get(job_id)
    if record is None:
        raise _not_found(job_id)
    return JobView.of(record)


@post(
    "/jobs/{job_id:str}/cancel",
    summary="Cancel a job (no further step starts)",
    tags=["jobs"],
    status_code=200,
    responses=problem_responses(400, 401, 404, 503),
    operation_class=DocumentedOperation,
)
async def cancel_job(job_id: FromPath[str], ctx: NamedDependency[AppContext]) -> JobView:
    """Stop a queued or running job; a finished job is returned unchanged."""
    record = await ctx.manager.cancel(job_id)
    if record is None:
        raise _not_found(job_id)
    return JobView.of(record)
