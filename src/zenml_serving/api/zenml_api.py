"""`POST /invoke` and `POST /submit` as ZenML's own deployment server answers them.

Served with `ZENML_SERVING_API=zenml` (the `zenml-serving` deployer flavor sets it), so that
`zenml deployment invoke` and `zenml.deployers.utils.invoke_deployment()` work unchanged:

- the body is ZenML's (`parameters`, `run_name`, `skip_artifact_materialization`), and
  parameter values are converted the lax pydantic way ZenML's server uses (its CLI sends
  `--n=5` as the string `"5"`); unknown and missing parameters are still `422`;
- the answer is ZenML's (`success`, `outputs`, `execution_time`, `metadata`, `error`), `200`
  also when a step failed, timed out or was cancelled (ZenML's CLI then prints its
  `zenml deployment logs` hint instead of a traceback);
- `POST /submit` queues a job and answers `{"run_id": <job id>}`.

Admission answers keep their status (`429` with `Retry-After`, `503` while draining): they
say "try again", not "the pipeline failed". A request that names `?mode=` (`sync`, `async`,
`stream`: the playground does) gets the native answers instead, so both kinds of client
share one service; its parameters are converted the same lax way.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.openapi import ResponseSpec
from litestar.params import Body, QueryParameter
from litestar.response import Redirect, ServerSentEvent

from zenml_serving.api.context import AppContext
from zenml_serving.api.invoke import (
    DisconnectWatch,
    InvokeMode,
    check_capture_override,
    run_invocation,
    shed_then_vet,
)
from zenml_serving.api.responses import DocumentedOperation, InvokeOperation, problem_responses
from zenml_serving.api.schemas import (
    InvokeResponse,
    JobAccepted,
    ZenMLInvokeMetadata,
    ZenMLInvokeResponse,
    ZenMLSubmitResponse,
)
from zenml_serving.engine.cancellation import InvocationCancelledError, InvocationTimeoutError
from zenml_serving.engine.engine import StepFailedError
from zenml_serving.execution.invocation import Invocation, invocation_from_request
from zenml_serving.execution.manager import InvocationAbortedError
from zenml_serving.execution.outputs import OutputNotSerializableError
from zenml_serving.execution.signals import StopSignal
from zenml_serving.tracking.records import run_name_of

if TYPE_CHECKING:
    import pydantic

    # Resolved from the app's signature_namespace (api.schemas.build_zenml_invoke_request_model).
    ZenMLInvokeRequest = pydantic.BaseModel

__all__ = ["invoke_zenml", "submit_zenml", "zenml_docs"]

# ZenML's CLI prints `<url>/docs` (and ZenML's server has `/redoc`): the playground is this
# service's interactive page (the parameter form, calls, streams), /schema/openapi.json its
# document. No Swagger/ReDoc viewer is served: they load scripts from public CDNs, which the
# security headers forbid.
_DOCS = {"/docs": "/playground", "/redoc": "/schema/openapi.json"}


@post(
    "/invoke",
    summary="Run the pipeline (ZenML's contract)",
    description=(
        "Runs the served pipeline with `parameters` and answers as ZenML's deployment server: "
        "200 with `success`, `outputs`, `execution_time`, `metadata` and `error` (a failing "
        "step is `success: false`). String values are converted to the parameter types. With "
        "`mode` (`sync`, `async`, `stream`): the native answers instead (InvokeResponse, "
        "202 JobAccepted, Server-Sent Events, problems)."
    ),
    status_code=200,
    tags=["invoke"],
    before_request=shed_then_vet("sync"),
    responses={
        200: ResponseSpec(
            ZenMLInvokeResponse | InvokeResponse,  # type: ignore[arg-type]
            description="Without `mode`: ZenML's answer (success or a failed run); "
            "`mode=sync`: the outputs; `mode=stream`: the job's Server-Sent Events",
            generate_examples=False,
        ),
        202: ResponseSpec(
            JobAccepted,
            description="`mode=async`: the job was queued (`Location` names it)",
            generate_examples=False,
        ),
        **problem_responses(400, 401, 403, 408, 413, 415, 422, 429, 499, 500, 503, 504),
    },
    operation_class=InvokeOperation,
)
async def invoke_zenml(
    data: Annotated[
        ZenMLInvokeRequest,
        Body(media_type=RequestEncodingType.JSON, schema_extra={"additionalProperties": False}),
    ],
    request: Request[Any, Any, Any],
    ctx: NamedDependency[AppContext],
    mode: Annotated[InvokeMode | None, QueryParameter(name="mode")] = None,
) -> Response[Any] | ServerSentEvent:
    """Validate, admit and run one invocation; a failed run is a 200 with `success: false`."""
    if mode is not None:
        return await run_invocation(data, request, ctx, mode)
    check_capture_override(data, ctx)
    invocation = invocation_from_request(data, mode="sync", capture_plan=ctx.capture_plan)
    stop = StopSignal()
    watch = DisconnectWatch(request, stop)
    started = time.perf_counter()
    outputs: dict[str, Any] | None = None
    error: str | None = None
    try:
        result = await ctx.manager.invoke(invocation, stop)
        outputs = result.outputs
    except StepFailedError as exc:
        error = f"step '{exc.step}' raised {type(exc.error).__name__}: {exc.error}"
    except InvocationTimeoutError as exc:
        error = (
            f"timed out ({exc}); raise ZENML_SERVING_REQUEST_TIMEOUT or move long work to an "
            "orchestrator"
        )
    except (InvocationCancelledError, InvocationAbortedError, OutputNotSerializableError) as exc:
        error = str(exc)
    finally:
        watch.close()
    return Response(
        ZenMLInvokeResponse(
            success=error is None,
            outputs=outputs,
            execution_time=time.perf_counter() - started,
            metadata=_metadata(invocation, ctx),
            error=error,
            invocation_id=invocation.id,
        ),
        headers={"X-Invocation-Id": invocation.id},
    )


@post(
    "/submit",
    summary="Queue a run (ZenML's contract)",
    description=(
        "Queues the pipeline with `parameters` as an async job and answers `run_id`, the job's "
        "id (`GET /jobs/{run_id}`, `GET /stream/{run_id}`)."
    ),
    status_code=202,
    tags=["invoke"],
    before_request=shed_then_vet("async", mode_from_query=False),
    responses={
        202: ResponseSpec(ZenMLSubmitResponse, description="The job was queued"),
        **problem_responses(400, 401, 403, 408, 413, 415, 422, 429, 503),
    },
    operation_class=DocumentedOperation,
)
async def submit_zenml(
    data: Annotated[
        ZenMLInvokeRequest,
        Body(media_type=RequestEncodingType.JSON, schema_extra={"additionalProperties": False}),
    ],
    ctx: NamedDependency[AppContext],
) -> Response[ZenMLSubmitResponse]:
    """Queue one invocation as a job."""
    check_capture_override(data, ctx)
    invocation = invocation_from_request(data, mode="async", capture_plan=ctx.capture_plan)
    record = await ctx.manager.submit(invocation)
    return Response(
        ZenMLSubmitResponse(run_id=record.job_id),
        status_code=202,
        headers={"Location": f"/jobs/{record.job_id}"},
    )


@get(list(_DOCS), include_in_schema=False, status_code=307)
async def zenml_docs(request: Request[Any, Any, Any]) -> Redirect:
    """`/docs` and `/redoc`, where ZenML's CLI points, lead to the API documentation."""
    return Redirect(_DOCS[request.url.path], status_code=307)


def _metadata(invocation: Invocation, ctx: AppContext) -> ZenMLInvokeMetadata:
    pipeline = ctx.pipeline
    deployment_id, deployment_name = ctx.deployment.current()
    recorded = (
        ctx.tracking is not None
        and invocation.capture is not None
        and invocation.capture.record_run
    )
    return ZenMLInvokeMetadata(
        deployment_id=deployment_id,
        deployment_name=deployment_name,
        snapshot_id=str(pipeline.snapshot_id),
        snapshot_name=pipeline.snapshot_name,
        pipeline_name=pipeline.name,
        run_id=None,
        run_index=None,
        run_name=run_name_of(pipeline.name, invocation.id, invocation.run_name)
        if recorded
        else None,
        parameters_used=dict(invocation.parameters),
    )
