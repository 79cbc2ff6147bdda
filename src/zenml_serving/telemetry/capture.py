"""The capture hook point: what spans and log events of one invocation may contain.

Telemetry never decides payload content itself. For each invocation it asks a
`CaptureDecider` for a `CaptureDecision`, and every payload attribute (an input or output
preview) goes through `payload_attributes`, which asks that decision and applies the one
redactor. The capture package's resolved plan plugs in as the decider; until then
`FallbackCaptureDecider` applies the modes conservatively (see its docstring).

What a span or log event holds per mode (ours; third-party spans are only redacted):
- payload allowed (`full`, sampled-in `sampled`, the failing step under `errors_only`):
  metadata plus redacted, truncated JSON previews of the step's inputs/outputs and the
  exception message;
- `metadata`: names, ids, status, timings, value types and lengths, exception type;
- `none` (`records_anything() is False`): a span with ids, names and timing only (status
  too, so a failure is visible), no types, sizes, messages or previews.
"""

from __future__ import annotations

import hashlib
import typing
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import msgspec

if TYPE_CHECKING:
    from zenml_serving.deployment.model import ServedPipeline, ServedStep
    from zenml_serving.execution.invocation import Invocation
    from zenml_serving.telemetry.redaction import Redactor

__all__ = [
    "LOG_EXCEPTION_MESSAGES",
    "CaptureDecider",
    "CaptureDecision",
    "Direction",
    "FallbackCaptureDecider",
    "ModeDecision",
    "metadata_attributes",
    "payload_attributes",
    "preview",
]

Direction = Literal["input", "output"]

_MODES = ("none", "metadata", "errors_only", "sampled", "full")

LOG_EXCEPTION_MESSAGES: ContextVar[bool] = ContextVar(
    "zenml_serving_log_exception_messages", default=True
)
"""Whether log events may carry exception messages (which often quote inputs) right now.

The telemetry listener sets it on the invocation's thread from the capture decision (for the
failing step once one failed); the log processor withholds messages where it is False."""
"""From most to least restrictive."""


class CaptureDecision(Protocol):
    """What telemetry may record for one invocation (decided once, before it runs)."""

    def records_anything(self, step: str | None = None) -> bool:
        """False under `none` (for the invocation, or for `step` if given): ids, names and
        timing only; no metadata, no payload."""

    def allows_payload(
        self, step: str, direction: Direction, name: str, *, failed: bool = False
    ) -> bool:
        """Whether the preview of `step`'s input/output `name` may be recorded.

        `failed` is True when asked after the step failed (`errors_only` records the failing
        step's inputs and error).
        """


CaptureDecider = Callable[["Invocation"], CaptureDecision]
"""Called once per invocation, on the worker thread, before the invocation span starts."""


@dataclass(frozen=True, slots=True)
class ModeDecision:
    """A decision from resolved capture modes: one for the invocation, some per step."""

    mode: str
    """The invocation's mode (`sampled` already resolved to `full` or `metadata`)."""
    step_modes: Mapping[str, str] = field(default_factory=dict)
    """Steps whose own mode wins over the invocation's."""
    restricted_steps: frozenset[str] = frozenset()
    """Steps whose payloads are never recorded (declarations only the capture plan can read)."""

    def records_anything(self, step: str | None = None) -> bool:
        """Everything but `none` records metadata."""
        mode = self.mode if step is None else self.step_modes.get(step, self.mode)
        return mode != "none"

    def allows_payload(
        self, step: str, direction: Direction, name: str, *, failed: bool = False
    ) -> bool:
        """`full` always; `errors_only` for a failing step; never in a restricted step."""
        del direction, name
        if step in self.restricted_steps:
            return False
        mode = self.step_modes.get(step, self.mode)
        return mode == "full" or (mode == "errors_only" and failed)


class FallbackCaptureDecider:
    """Used until the capture plan is plugged in; never records more than the plan would.

    - Mode of a step: step `mode` > request `capture_override.mode` > pipeline `mode` >
      service default (the spec's precedence); `sampled` resolves per invocation,
      deterministically from its id, to `full` or `metadata`.
    - A step with per-value declarations (`inputs`/`outputs`/`redact`/`artifacts` in its or
      the pipeline's `serving_capture`, or non-name `Annotated` extras on its inputs or
      outputs) gets no payload previews at all: those declarations are the capture
      package's to interpret.
    """

    def __init__(self, pipeline: ServedPipeline, *, default_mode: str, sample_rate: float) -> None:
        self._default = default_mode
        self._pipeline_mode = _mode_of(pipeline.capture)
        self._sample_rate = sample_rate
        self._step_modes = {
            s.name: mode for s in pipeline.steps if (mode := _mode_of(s.capture)) is not None
        }
        pipeline_values = _declares_values(pipeline.capture)
        self._restricted = frozenset(
            s.name for s in pipeline.steps if pipeline_values or _step_declares_values(s)
        )

    def __call__(self, invocation: Invocation) -> CaptureDecision:
        """The decision for `invocation`."""
        override = invocation.capture_override or {}
        rate = float(override.get("sample_rate", self._sample_rate))
        mode = _mode_of(override) or self._pipeline_mode or self._default
        return ModeDecision(
            _resolve_sampling(mode, invocation.id, rate),
            {s: _resolve_sampling(m, invocation.id, rate) for s, m in self._step_modes.items()},
            self._restricted,
        )


def _mode_of(declaration: Mapping[str, Any]) -> str | None:
    mode = declaration.get("mode") if declaration else None
    return mode if isinstance(mode, str) and mode in _MODES else None


def _declares_values(declaration: Mapping[str, Any]) -> bool:
    return any(declaration.get(k) for k in ("inputs", "outputs", "redact", "artifacts"))


def _step_declares_values(step: ServedStep) -> bool:
    if _declares_values(step.capture):
        return True
    hints: dict[str, Any] = dict(step.input_annotations)
    try:
        hints["return"] = typing.get_type_hints(step.function, include_extras=True).get("return")
    except Exception:  # unresolvable hints: treat as declared, i.e. payload-free
        return True
    return any(_has_extras(h) for h in hints.values())


def _has_extras(annotation: Any) -> bool:
    """Annotated metadata other than plain names (ZenML's output names are strings)."""
    if typing.get_origin(annotation) is typing.Annotated:
        if any(not isinstance(m, str) for m in annotation.__metadata__):
            return True
        return _has_extras(typing.get_args(annotation)[0])
    return any(_has_extras(a) for a in typing.get_args(annotation))


def _resolve_sampling(mode: str, invocation_id: str, rate: float) -> str:
    if mode != "sampled":
        return mode
    digest = hashlib.sha256(invocation_id.encode()).digest()
    return "full" if int.from_bytes(digest[:8], "big") / 2**64 < rate else "metadata"


# -- the one helper through which payloads reach spans and logs --------------------------------


def _enc_hook(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    return repr(value)


def preview(value: Any, *, name: str, redact: Redactor, max_bytes: int) -> str:
    """A redacted JSON preview of `value`, cut to `max_bytes` (never inside a character)."""
    try:
        builtins = msgspec.to_builtins(value, enc_hook=_enc_hook, str_keys=True)
    except Exception:
        builtins = repr(value)
    redacted = redact({name: builtins})[name]
    encoded = msgspec.json.encode(redacted, enc_hook=repr)
    if len(encoded) <= max_bytes:
        return encoded.decode()
    cut = encoded[:max_bytes].decode("utf-8", errors="ignore")
    return f"{cut}...[truncated, {len(encoded)} bytes]"


def payload_attributes(
    decision: CaptureDecision,
    *,
    step: str,
    direction: Direction,
    values: Mapping[str, Any],
    redact: Redactor,
    max_bytes: int,
    failed: bool = False,
) -> dict[str, str]:
    """`zenml.step.<direction>.<name>` previews of the values the decision allows, redacted."""
    return {
        f"zenml.step.{direction}.{name}": preview(
            value, name=name, redact=redact, max_bytes=max_bytes
        )
        for name, value in values.items()
        if decision.allows_payload(step, direction, name, failed=failed)
    }


_SIZED = (str, bytes, bytearray, list, tuple, dict, set, frozenset)


def metadata_attributes(direction: Direction, values: Mapping[str, Any]) -> dict[str, Any]:
    """Names, types and lengths (-1: no length) of a step's inputs/outputs, no content.

    Three array attributes per direction rather than two per value: every attribute costs
    on the request path."""
    if not values:
        return {}
    return {
        f"zenml.step.{direction}.names": tuple(values),
        f"zenml.step.{direction}.types": tuple(type(v).__name__ for v in values.values()),
        f"zenml.step.{direction}.lengths": tuple(
            len(v) if isinstance(v, _SIZED) else -1 for v in values.values()
        ),
    }
