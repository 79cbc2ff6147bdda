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
    "DocumentedOperation",
    "InvokeOperation",
    "problem_responses",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"

PROBLEM_DESCRIPTIONS: Mapping[int, str] = {
    400: "Malformed request: the body is not JSON, or a parameter cannot be read",
    401: "Unauthorized: missing or wrong API key (only when an API key is configured)",
    403: "Capture override denied (ZENML_SERVING_CAPTURE_OVERRIDE=deny)",
    404: "Unknown job (finished jobs expire after ZENML_SERVING_JOB_TTL)",
    413: "Request body too large",
    415: "Unsupported content type: send application/json",
    422: "Invalid field(s): `errors` names each one",
    429: "Overloaded: every slot busy and the queue full; retry after `Retry-After` seconds",
    499: "Invocation cancelled (the client disconnected, or the service stopped it)",
    500: "A step failed (`step`, `error_type`, `attempts`) or an output is not serializable",
    503: "Shutting down, job backend unavailable, or not ready: retry (see `Retry-After`)",
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


def _retry_after(*, required: bool) -> OpenAPIHeader:
    return OpenAPIHeader(
        schema=Schema(type=OpenAPIType.STRING),
        description="Seconds to wait before retrying",
        required=required,
    )


@dataclass
class DocumentedOperation(Operation):
    """An operation whose 429 documents its `Retry-After` header (always sent) and whose 503
    may carry one (shutting down, backend unavailable; a not-ready `/health` does not)."""

    def __post_init__(self) -> None:
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
            ok.content = {
                **(ok.content or {}),
                "text/event-stream": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)),
            }
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
