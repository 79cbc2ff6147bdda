"""`POST /invoke`: run the pipeline synchronously, as an async job, or as a live stream."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Annotated, Any, Literal

from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.openapi import ResponseSpec
from litestar.params import Body, QueryParameter
from litestar.response import ServerSentEvent

from zenml_serving.api.context import AppContext
from zenml_serving.api.errors import problem, problem_for
from zenml_serving.api.request_limits import vet_json_body
from zenml_serving.api.responses import InvokeOperation, problem_responses
from zenml_serving.api.schemas import InvokeResponse, JobAccepted, StepSummary
from zenml_serving.api.stream_limits import STREAM_ROUTE, STREAM_WHEN_MODE_STREAM
from zenml_serving.api.streaming import job_event_stream
from zenml_serving.engine.cancellation import InvocationCancelledError
from zenml_serving.engine.engine import StepFailedError
from zenml_serving.execution.invocation import Invocation, invocation_from_request
from zenml_serving.execution.manager import InvocationAbortedError, ShuttingDownError
from zenml_serving.execution.outputs import OutputNotSerializableError
from zenml_serving.execution.signals import StopSignal

if TYPE_CHECKING:
    from collections.abc import Callable

    import pydantic

    # At runtime Litestar resolves this name from the app's signature_namespace: the model is
    # built per pipeline at startup (api.schemas.build_invoke_request_model).
    InvokeRequest = pydantic.BaseModel

__all__ = [
    "CONTEXT_STATE_KEY",
    "DisconnectWatch",
    "InvokeMode",
    "check_capture_override",
    "invoke",
    "run_invocation",
    "shed_then_vet",
]

InvokeMode = Literal["sync", "async", "stream"]
_WATCH_AFTER_S = 0.05
_MODES: frozenset[str] = frozenset({"sync", "async", "stream"})

CONTEXT_STATE_KEY = "zenml_serving_context"
"""The AppContext in the app's state, for `before_request` hooks (which get no dependencies)."""


def shed_then_vet(
    default_mode: InvokeMode, *, mode_from_query: bool = True
) -> Callable[[Request[Any, Any, Any]], Any]:
    """The `before_request` hook of the invoke routes: 429 at once when the execution manager
    could admit nothing, before the body is read, decoded and validated (a refusal then costs
    a fraction of a full request, which is what lets overload be shed quickly), then
    `vet_json_body`. With `mode_from_query`, `?mode=` picks the mode it is counted under
    (`default_mode` without one; an unknown value is left to validation)."""

    async def hook(request: Request[Any, Any, Any]) -> None:
        ctx: AppContext = request.app.state[CONTEXT_STATE_KEY]
        if ctx.manager.slots.full:
            mode = (mode_from_query and request.query_params.get("mode")) or default_mode
            if mode in _MODES:
                ctx.manager.refuse_when_full(mode)
        await vet_json_body(request)

    return hook


@post(
    "/invoke",
    summary="Run the pipeline",
    description=(
        "Runs the served pipeline with `parameters`. `mode=sync` (default) answers with the "
        "outputs; `mode=async` answers 202 with a job id to poll or stream; `mode=stream` "
        "answers with the job's Server-Sent Events until it ends. Over capacity: 429 with "
        "Retry-After."
    ),
    status_code=200,
    tags=["invoke"],
    before_request=shed_then_vet("sync"),
    opt={STREAM_ROUTE: STREAM_WHEN_MODE_STREAM},
    responses={
        200: ResponseSpec(
            InvokeResponse,
            description="`mode=sync`: the outputs; `mode=stream`: the job's Server-Sent Events",
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
async def invoke(
    data: Annotated[
        InvokeRequest,
        Body(
            media_type=RequestEncodingType.JSON,
            # unknown fields are rejected (Litestar leaves `extra="forbid"` out of the schema)
            schema_extra={"additionalProperties": False},
        ),
    ],
    request: Request[Any, Any, Any],
    ctx: NamedDependency[AppContext],
    mode: Annotated[InvokeMode, QueryParameter(name="mode")] = "sync",
) -> Response[InvokeResponse | JobAccepted] | ServerSentEvent:
    """Validate, admit and run one invocation."""
    return await run_invocation(data, request, ctx, mode)


async def run_invocation(
    data: Any, request: Request[Any, Any, Any], ctx: AppContext, mode: InvokeMode
) -> Response[InvokeResponse | JobAccepted] | ServerSentEvent:
    """The native contract of `POST /invoke` for a validated body, in `mode`."""
    check_capture_override(data, ctx)
    invocation = invocation_from_request(data, mode=mode, capture_plan=ctx.capture_plan)
    if mode == "sync":
        return await _invoke_sync(invocation, request, ctx)
    record = await ctx.manager.submit(invocation)
    if mode == "stream":
        return await job_event_stream(ctx, record.job_id, after=0)
    location = f"/jobs/{record.job_id}"
    return Response(
        JobAccepted(
            job_id=record.job_id,
            status=record.status,
            location=location,
            stream=f"/stream/{record.job_id}",
        ),
        status_code=202,
        headers={"Location": location},
    )


def check_capture_override(data: Any, ctx: AppContext) -> None:
    """403 when the validated request `data` overrides capture and the operator forbids it
    (checked before anything is resolved for it)."""
    if data.capture_override is not None and ctx.config.capture_override == "deny":
        raise problem(
            403,
            "capture-override-denied",
            "Capture override not allowed",
            "this service is configured with ZENML_SERVING_CAPTURE_OVERRIDE=deny; remove "
            "`capture_override` from the request",
        )


async def _invoke_sync(
    invocation: Invocation, request: Request[Any, Any, Any], ctx: AppContext
) -> Response[InvokeResponse | JobAccepted]:
    stop = StopSignal()
    watch = DisconnectWatch(request, stop)
    try:
        result = await ctx.manager.invoke(invocation, stop)
    except (
        StepFailedError,
        InvocationAbortedError,
        InvocationCancelledError,
        OutputNotSerializableError,
    ) as exc:
        if isinstance(exc, InvocationCancelledError) and not ctx.manager.accepting:
            # stopped by the end of the drain grace, not by its client: 503, not 499
            shutting_down = ShuttingDownError("the service is shutting down")
            raise problem_for(shutting_down, invocation_id=invocation.id) from exc
        raise problem_for(exc, invocation_id=invocation.id) from exc
    finally:
        watch.close()
    return Response(
        InvokeResponse(
            invocation_id=invocation.id,
            status="completed",
            pipeline=ctx.pipeline.name,
            snapshot_id=str(ctx.pipeline.snapshot_id),
            outputs=result.outputs,
            duration_ms=result.duration_s * 1000,
            steps=[
                StepSummary(
                    name=s.name,
                    status=s.status,
                    duration_ms=s.duration_s * 1000,
                    attempts=s.attempts,
                )
                for s in result.steps
            ],
            trace_id=invocation.attributes.get("trace_id"),
            execution_time=result.duration_s,
        ),
        headers={"X-Invocation-Id": invocation.id},
    )


class DisconnectWatch:
    """Sets `stop` when the client goes away, so its invocation is cancelled.

    Listening for the disconnect needs a task reading the ASGI `receive` channel; most sync
    invocations finish within milliseconds, so the task is started only after
    `_WATCH_AFTER_S`: a quick request costs a timer, not a task (measured on the sync path).
    """

    __slots__ = ("_request", "_stop", "_task", "_timer")

    def __init__(self, request: Request[Any, Any, Any], stop: StopSignal) -> None:
        self._request = request
        self._stop = stop
        self._task: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(_WATCH_AFTER_S, self._start)

    def _start(self) -> None:
        self._task = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        with contextlib.suppress(Exception):
            while True:
                message = await self._request.receive()
                if message["type"] == "http.disconnect":
                    self._stop.set()
                    return

    def close(self) -> None:
        """Stop watching (the invocation is over)."""
        self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
