"""The documented non-success responses of every route, in one place.

Each handler names the statuses it can answer besides its success one
(`responses=problem_responses(401, 404, 503)`); they are all RFC 9457 problems
(`application/problem+json`, schema `Problem`). `DocumentedOperation` adds what Litestar's
`ResponseSpec` cannot say: the `Retry-After` header of 429 and 503 answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from litestar.openapi import ResponseSpec
from litestar.openapi.spec import (
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Schema,
)

from zenml_serving.api.schemas import Problem

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "PROBLEM_DESCRIPTIONS",
    "PROBLEM_MEDIA_TYPE",
    "SSE_MEDIA_TYPE",
    "DocumentedOperation",
    "InvokeOperation",
    "problem_responses",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
SSE_MEDIA_TYPE = "text/event-stream"
_STR, _INT = OpenAPIType.STRING, OpenAPIType.INTEGER

PROBLEM_DESCRIPTIONS: Mapping[int, str] = {
    400: "Malformed request: the body is not JSON, or a parameter cannot be read",
    401: "Unauthorized: missing or wrong API key (only when an API key is configured)",
    403: "Capture override denied (ZENML_SERVING_CAPTURE_OVERRIDE=deny), or admin routes "
    "disabled (no ZENML_SERVING_AUTH_KEY)",
    404: "Unknown job (finished jobs expire after ZENML_SERVING_JOB_TTL)",
    408: "The body did not arrive within ZENML_SERVING_BODY_TIMEOUT",
    413: "Request body too large",
    415: "Unsupported content type: send application/json",
    422: "Invalid field(s): `errors` names each one",
    429: "Overloaded: every slot busy and the queue full, this client holds its share of open "
    "streams, or (async) every kept job is unfinished at ZENML_SERVING_MAX_JOBS / "
    "ZENML_SERVING_MAX_JOB_BYTES; retry after `Retry-After` seconds",
    499: "Invocation cancelled (the client disconnected, or the service stopped it)",
    500: "A step failed (`step`, `error_type`, `attempts`) or an output is not serializable",
    503: "Shutting down, job backend unavailable, every stream in use, not ready, or a reload "
    "failed (the old version keeps serving): retry (see `Retry-After`)",
    504: "Invocation timed out (ZENML_SERVING_REQUEST_TIMEOUT, queue wait included)",
}


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """`responses=` for a route handler: a problem+json response per status in `statuses`."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=PROBLEM_DESCRIPTIONS[status],
            media_type=PROBLEM_MEDIA_TYPE,
            generate_examples=False,
        )
        for status in statuses
    }


def _sse_media_type() -> OpenAPIMediaType:
    """One Server-Sent Event (OpenAPI 3.1: the schema of an event stream describes each event):
    `data` is JSON, a job event (`type`, `job_id`, `at`, `id`, ...) or a heartbeat (`at`)."""
    string, number, integer = (Schema(type=t) for t in (_STR, OpenAPIType.NUMBER, _INT))
    job_error = Schema(
        type=OpenAPIType.OBJECT,
        required=["type", "message"],
        properties={"type": string, "message": string, "step": string},
    )
    event = Schema(
        type=OpenAPIType.OBJECT,
        required=["at"],
        properties={
            "type": string,
            "job_id": string,
            "at": number,
            "id": integer,
            "step": string,
            "duration_ms": number,
            "attempts": integer,
            "outputs": Schema(type=OpenAPIType.OBJECT),
            "error": job_error,
        },
    )
    return OpenAPIMediaType(
        schema=Schema(
            type=OpenAPIType.OBJECT,
            required=["data"],
            properties={
                "event": string,
                "id": string,
                "data": Schema(
                    type=_STR, content_media_type="application/json", content_schema=event
                ),
            },
        )
    )


def _retry_after(*, required: bool) -> OpenAPIHeader:
    return OpenAPIHeader(
        schema=Schema(type=OpenAPIType.STRING),
        description="Seconds to wait before retrying",
        required=required,
    )


@dataclass
class DocumentedOperation(Operation):
    """An operation whose event stream (if any) documents its events, whose 429 documents its
    `Retry-After` header (always sent) and whose 503 may carry one (shutting down, backend
    unavailable; a not-ready `/health` does not)."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse) and ok.content and SSE_MEDIA_TYPE in ok.content:
            ok.content[SSE_MEDIA_TYPE] = _sse_media_type()
        for status, required in (("429", True), ("503", False)):
            response = (self.responses or {}).get(status)
            if isinstance(response, OpenAPIResponse):
                response.headers = {
                    **(response.headers or {}),
                    "Retry-After": _retry_after(required=required),
                }


@dataclass
class InvokeOperation(DocumentedOperation):
    """`POST /invoke`: its 200 is JSON (`mode=sync`) or an event stream (`mode=stream`), and
    its 202 names the job in `Location`."""

    def __post_init__(self) -> None:
        super().__post_init__()
        responses = self.responses or {}
        ok = responses.get("200")
        if isinstance(ok, OpenAPIResponse):
            ok.content = {**(ok.content or {}), SSE_MEDIA_TYPE: _sse_media_type()}
        accepted = responses.get("202")
        if isinstance(accepted, OpenAPIResponse):
            accepted.headers = {
                **(accepted.headers or {}),
                "Location": OpenAPIHeader(
                    schema=Schema(type=OpenAPIType.STRING),
                    description="The job: `/jobs/{job_id}`",
                    required=True,
                ),
            }
