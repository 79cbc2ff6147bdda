"""How the capture decision of an invocation shapes its spans and log events.

The capture package resolves one `InvocationCapture` per invocation; ZenML run tracking,
spans and logs all consult that same object, so they cannot disagree. Telemetry gets it from
a `CaptureDecider` (by default: `invocation.capture`, resolved on the request path, else the
plan) and turns it into attributes here, in one place:

- a value whose preview is allowed (`full`, sampled-in `sampled`, a failing step under
  `errors_only`): `zenml.step.<input|output>.<name>.preview` (redacted, cut to the capture
  size limit) with `.truncated`, `.size_bytes` and `.type`;
- a recorded step (`metadata` and up): names, types and lengths of the values whose metadata
  is allowed, status, attempts, the exception type;
- a step under `none`: ids, names, timing and status only (no types, sizes, messages or
  previews): the span allowed by the spec.

The exception message (and the stack trace event) is recorded only where the step's
`error_detail` allows it; elsewhere the exception type alone.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal

from zenml_serving.capture.redaction import type_name

if TYPE_CHECKING:
    from collections.abc import Mapping

    from zenml_serving.capture import InvocationCapture, StepCapture, ValueCapture
    from zenml_serving.execution.invocation import Invocation

__all__ = [
    "LOG_EXCEPTION_MESSAGES",
    "CaptureDecider",
    "Direction",
    "metadata_attributes",
    "payload_attributes",
]

Direction = Literal["input", "output"]

CaptureDecider = Callable[["Invocation"], "InvocationCapture"]
"""Called at most once per invocation, on its worker thread, when something needs it."""

LOG_EXCEPTION_MESSAGES: ContextVar[bool] = ContextVar(
    "zenml_serving_log_exception_messages", default=True
)
"""Whether log events may carry exception messages (which often quote inputs) right now.

The telemetry listener sets it on the invocation's thread from the failing step's
`error_detail`; the log processor withholds messages where it is False."""

_SIZED = (str, bytes, bytearray, list, tuple, dict, set, frozenset)


def _decision(step: StepCapture, direction: Direction, name: str, *, failed: bool) -> ValueCapture:
    return step.input(name, failed=failed) if direction == "input" else step.output(name)


def payload_attributes(
    step: StepCapture, direction: Direction, values: Mapping[str, Any], *, failed: bool = False
) -> dict[str, Any]:
    """Previews of the values whose capture allows one, rendered by the capture package."""
    attributes: dict[str, Any] = {}
    for name, value in values.items():
        if not _decision(step, direction, name, failed=failed).preview:
            continue
        preview = step.value_preview(name, value)
        attributes.update(preview.attributes(f"zenml.step.{direction}.{name}"))
    return attributes


def metadata_attributes(
    step: StepCapture, direction: Direction, values: Mapping[str, Any], *, failed: bool = False
) -> dict[str, Any]:
    """Names, types and lengths (-1: no length) of the values whose metadata is allowed.

    Three array attributes per direction rather than two per value: every attribute costs
    on the request path."""
    allowed = [
        (name, value)
        for name, value in values.items()
        if _decision(step, direction, name, failed=failed).metadata
    ]
    if not allowed:
        return {}
    return {
        f"zenml.step.{direction}.names": tuple(name for name, _ in allowed),
        f"zenml.step.{direction}.types": tuple(type_name(v) for _, v in allowed),
        f"zenml.step.{direction}.lengths": tuple(
            len(v) if isinstance(v, _SIZED) else -1 for _, v in allowed
        ),
    }
