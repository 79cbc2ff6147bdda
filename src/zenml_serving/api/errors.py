"""Domain exceptions -> RFC 9457 problem+json responses, in one table.

Every error the service answers has a `type` URN, a `title`, a `detail` that says what to do,
and fields a client can act on (`step`, `field`s, `retry_after_s`). Tracebacks never leave the
process: they go to the log.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

import structlog
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.problem_details import ProblemDetailsException

from zenml_serving.engine.cancellation import InvocationCancelledError, InvocationTimeoutError
from zenml_serving.engine.engine import StepFailedError
from zenml_serving.execution.backend import BackendUnavailableError
from zenml_serving.execution.manager import (
    InvocationAbortedError,
    JobsFullError,
    ShuttingDownError,
)
from zenml_serving.execution.outputs import OutputNotSerializableError
from zenml_serving.execution.slots import OverloadedError

__all__ = ["BACKEND_UNAVAILABLE_DETAIL", "PROBLEM_MAP", "problem", "problem_for"]

BACKEND_UNAVAILABLE_DETAIL = (
    "the job backend (Redis) is unreachable (the service log says where); sync invocations "
    "still work; retry later"
)
"""What a client is told when Redis is down: never its address or user (those are logged)."""

_URN = "urn:zenml-serving:problem:"
_log = structlog.stdlib.get_logger(__name__)


def problem(
    status: int,
    kind: str,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> ProblemDetailsException:
    """A problem+json exception with our type URN scheme."""
    return ProblemDetailsException(
        status_code=status,
        type_=_URN + kind,
        title=title,
        detail=detail,
        headers=headers,
        extra={k: v for k, v in extra.items() if v is not None} or None,
    )


def _overloaded(exc: OverloadedError) -> ProblemDetailsException:
    return problem(
        429,
        "overloaded",
        "Too many requests",
        f"all execution slots are busy and the queue is full; retry in {exc.retry_after_s} s",
        headers={"Retry-After": str(exc.retry_after_s)},
        retry_after_s=exc.retry_after_s,
    )


def _jobs_full(exc: JobsFullError) -> ProblemDetailsException:
    return problem(
        429,
        "jobs-full",
        "Too many kept jobs",
        f"no room for another async job: {exc.reason}; retry in {exc.retry_after_s} s, or "
        "invoke in sync mode",
        headers={"Retry-After": str(exc.retry_after_s)},
        retry_after_s=exc.retry_after_s,
    )


def _step_failed(exc: StepFailedError) -> ProblemDetailsException:
    error_type = type(exc.error).__name__
    return problem(
        500,
        "step-failed",
        "Step failed",
        f"step '{exc.step}' raised {error_type}: {exc.error}",
        step=exc.step,
        error_type=error_type,
        attempts=exc.attempts,
    )


def _timed_out(exc: InvocationTimeoutError) -> ProblemDetailsException:
    return problem(
        504,
        "timeout",
        "Invocation timed out",
        f"{exc}; raise ZENML_SERVING_REQUEST_TIMEOUT or move long work to an orchestrator",
        step=exc.next_step,
    )


def _cancelled(exc: InvocationCancelledError) -> ProblemDetailsException:
    return problem(499, "cancelled", "Invocation cancelled", str(exc), step=exc.next_step)


def _shutting_down(_: ShuttingDownError) -> ProblemDetailsException:
    return problem(
        503,
        "shutting-down",
        "Service is shutting down",
        "this instance is draining; retry against another instance",
        headers={"Retry-After": "1"},
    )


def _backend_unavailable(_: BackendUnavailableError) -> ProblemDetailsException:
    return problem(
        503,
        "backend-unavailable",
        "Job backend unavailable",
        BACKEND_UNAVAILABLE_DETAIL,
        headers={"Retry-After": "5"},
    )


def _not_serializable(exc: OutputNotSerializableError) -> ProblemDetailsException:
    return problem(500, "output-not-serializable", "Output not serializable", str(exc))


def _validation(exc: ValidationException) -> ProblemDetailsException:
    errors = exc.extra if isinstance(exc.extra, list) else []
    fields = [
        {"field": e.get("key") or "body", "message": e.get("message")}
        for e in errors
        if isinstance(e, Mapping)
    ]
    if not fields:
        # Not a field error: the body itself could not be read (malformed JSON and the like).
        return problem(400, "bad-request", "Bad request", exc.detail)
    names = ", ".join(str(f["field"]) for f in fields)
    return problem(
        422,
        "validation",
        "Invalid request",
        f"invalid field(s): {names}",
        errors=fields,
    )


_HTTP_KINDS = {
    401: "unauthorized",
    404: "not-found",
    405: "method-not-allowed",
    413: "too-large",
    415: "media-type",
}


def _http(exc: HTTPException) -> ProblemDetailsException:
    try:
        title = HTTPStatus(exc.status_code).phrase
    except ValueError:
        title = "Error"
    detail = exc.detail
    if exc.status_code == 413:
        detail = (
            "the request body is larger than this service accepts (ZENML_SERVING_MAX_REQUEST_SIZE)"
        )
    return problem(
        exc.status_code,
        _HTTP_KINDS.get(exc.status_code, "http"),
        title,
        detail or title,
        headers=exc.headers,
    )


def _aborted(exc: InvocationAbortedError) -> ProblemDetailsException:
    return problem(500, "invocation-aborted", "Invocation aborted", str(exc))


def _unexpected(exc: Exception) -> ProblemDetailsException:
    """Anything no other entry knows: logged with its traceback, answered without it."""
    _log.error("unhandled_exception", error_type=type(exc).__name__, exc_info=exc)
    return problem(
        500,
        "internal",
        "Internal error",
        f"an unexpected {type(exc).__name__}; the service logged it with its traceback",
    )


PROBLEM_MAP: Mapping[type[Exception], Callable[[Any], ProblemDetailsException]] = {
    OverloadedError: _overloaded,
    JobsFullError: _jobs_full,
    StepFailedError: _step_failed,
    InvocationTimeoutError: _timed_out,
    InvocationCancelledError: _cancelled,
    ShuttingDownError: _shutting_down,
    InvocationAbortedError: _aborted,
    BackendUnavailableError: _backend_unavailable,
    OutputNotSerializableError: _not_serializable,
    ValidationException: _validation,
    HTTPException: _http,
    Exception: _unexpected,
}


def problem_for(exc: Exception, *, invocation_id: str) -> ProblemDetailsException:
    """The problem for `exc`, naming the invocation (body field and X-Invocation-Id header)."""
    for kind in type(exc).__mro__:
        convert = PROBLEM_MAP.get(kind)
        if convert is not None:
            break
    else:
        raise exc
    result = convert(exc)
    extra = dict(result.extra) if isinstance(result.extra, Mapping) else {}
    result.extra = {**extra, "invocation_id": invocation_id}
    result.headers = {**(result.headers or {}), "X-Invocation-Id": invocation_id}
    return result
