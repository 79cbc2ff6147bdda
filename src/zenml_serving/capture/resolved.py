"""The resolved capture decisions of one invocation: what every sink may record.

`CapturePlan.resolve(...)` returns one `InvocationCapture` per invocation; ZenML run tracking,
span attributes and log events all ask it, so they cannot disagree. Every object here is
immutable and already decided: a question is an attribute read or a dict lookup.

How to read it:
- `InvocationCapture.record_run`: create a ZenML run for this invocation at all.
- `InvocationCapture.run_payloads(failed=...)`: put run-level payloads (request parameters,
  pipeline outputs, the error message and traceback) in the run, the root span and log events.
- `InvocationCapture.run_parameters(...)` / `run_outputs(...)`: the parameters and pipeline
  outputs a run-level preview may show (`run_values.py`: a parameter only where every step
  input it feeds may be previewed), or None where no run-level payload is allowed.
- `StepCapture.recorded`: the step has a record (metadata: name, status, timings, sizes,
  types) in the run and payload-free attributes on its span. An unrecorded step gets ids and
  timings only: a bare span, and in a recorded run at most a bare step run (name, status,
  timings), which ZenML needs to derive the run's status.
- `StepCapture.input(name, failed=...)`, `StepCapture.output(name)`: a `ValueCapture` saying
  whether the value's preview is recorded (`.preview`), whether its type/size are (`.metadata`)
  and whether it is persisted as an artifact (`.persist`).
- `StepCapture.error_detail`: on failure, record the error message and traceback (masked with
  `redaction.redact`), not only the exception type. Never where an input of the step is not
  previewed on failure: messages often quote inputs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from zenml_serving.capture.detectors import REDACTED, is_sensitive_field
from zenml_serving.capture.policy import CaptureMode
from zenml_serving.capture.redaction import Preview, preview, type_name

if TYPE_CHECKING:
    from collections.abc import Mapping

    from zenml_serving.capture.run_values import RunValues

__all__ = [
    "GlobalSource",
    "InvocationCapture",
    "StepCapture",
    "ValueCapture",
    "ValueSource",
    "concrete_mode",
]

GlobalSource = Literal["step", "request", "pipeline", "service"]
"""Which layer decided a global mode."""
ValueSource = Literal["step", "pipeline", "annotation", "global"]
"""Which layer decided a value's mode (`global`: the step's global mode)."""


def concrete_mode(mode: CaptureMode, *, sampled: bool, failed: bool) -> CaptureMode:
    """What `mode` means for one invocation and outcome: FULL, METADATA or NONE."""
    if mode is CaptureMode.SAMPLED:
        return CaptureMode.FULL if sampled else CaptureMode.METADATA
    if mode is CaptureMode.ERRORS_ONLY:
        return CaptureMode.FULL if failed else CaptureMode.METADATA
    return mode


@dataclass(frozen=True, slots=True)
class ValueCapture:
    """What may be recorded about one input or output of one step, for one outcome."""

    declared: CaptureMode
    """The mode precedence chose for this value (may be `sampled` or `errors_only`)."""
    source: ValueSource
    """Which layer chose it."""
    mode: CaptureMode
    """The concrete mode for this invocation and outcome: FULL, METADATA or NONE."""
    persist: bool
    """Persist the value as an artifact."""

    @property
    def preview(self) -> bool:
        """Record a redacted, truncated preview of the value."""
        return self.mode is CaptureMode.FULL

    @property
    def metadata(self) -> bool:
        """Record the value's type and size (`redaction.describe_value`)."""
        return self.mode is not CaptureMode.NONE


@dataclass(frozen=True, slots=True)
class StepCapture:
    """The capture decisions for one step of one invocation."""

    name: str
    mode: CaptureMode
    """The step's global mode after precedence (step > request > pipeline > service)."""
    mode_source: GlobalSource
    sampled: bool
    """The invocation falls in this step's sample (its effective `sample_rate`)."""
    error_detail: bool
    """On failure, record the (masked) error message and traceback, not only its type."""
    max_bytes: int
    """Largest preview of this step's values, in UTF-8 bytes."""
    redact: tuple[str, ...]
    """Extra sensitive field names for this step (service + pipeline + step)."""
    inputs: Mapping[str, ValueCapture]
    """Per input, while the step succeeds."""
    failed_inputs: Mapping[str, ValueCapture]
    """Per input, when the step fails (`errors_only` records them in full)."""
    outputs: Mapping[str, ValueCapture]
    """Per output (outputs only exist when the step succeeds)."""
    fallback: ValueCapture
    """For a value name the step does not have (e.g. `**kwargs`): its global mode, never
    persisted."""
    fallback_failed: ValueCapture

    @property
    def recorded(self) -> bool:
        """The step has a metadata record; False means ids and timings only."""
        return self.mode is not CaptureMode.NONE

    def input(self, name: str, *, failed: bool = False) -> ValueCapture:
        """The decisions for input `name`, for a step that succeeded or `failed`."""
        if failed:
            return self.failed_inputs.get(name, self.fallback_failed)
        return self.inputs.get(name, self.fallback)

    def output(self, name: str) -> ValueCapture:
        """The decisions for output `name`."""
        return self.outputs.get(name, self.fallback)

    @property
    def needs_input_previews(self) -> bool:
        """Some input preview may be recorded (on success or failure): render them at start."""
        return any(v.preview for v in (*self.inputs.values(), *self.failed_inputs.values()))

    @property
    def any_payload(self) -> bool:
        """Some payload (preview or error detail) of this step may reach a sink."""
        return (
            self.error_detail
            or self.needs_input_previews
            or any(v.preview for v in self.outputs.values())
        )

    def preview(self, value: Any) -> Preview:
        """A preview of one of this step's values, with its size limit and redaction list."""
        return preview(value, max_bytes=self.max_bytes, extra_fields=self.redact)

    def value_preview(self, name: str, value: Any) -> Preview:
        """The preview of this step's input or output `name`, for every sink: a value whose own
        name is sensitive (`api_key=...`) shows `REDACTED` whole, typed as the value is."""
        if is_sensitive_field(name, self.redact):
            return dataclasses.replace(self.preview(REDACTED), type_name=type_name(value))
        return self.preview(value)


@dataclass(frozen=True, slots=True)
class InvocationCapture:
    """The capture decisions for one invocation: the single object every sink consults."""

    invocation_id: str
    mode: CaptureMode
    """The run-level mode (request > pipeline > service); steps may override it."""
    mode_source: GlobalSource
    sampled: bool
    """The invocation falls in the run-level sample."""
    record_run: bool
    """Create a ZenML run record (with step records for the `recorded` steps)."""
    run_payload_ok: bool
    run_payload_failed: bool
    override_applied: bool
    """The request's `capture_override` was applied."""
    override_ignored: bool
    """The request carried a `capture_override` and the service denies overrides."""
    max_bytes: int
    """Largest preview of run-level values (request parameters, pipeline outputs)."""
    redact: tuple[str, ...]
    """Extra sensitive field names for run-level values (service + pipeline)."""
    steps: Mapping[str, StepCapture]
    run_values: RunValues
    """The parameters and pipeline outputs the run-level previews leave out."""

    def step(self, name: str) -> StepCapture:
        """The decisions for step `name` (its invocation id in the pipeline)."""
        return self.steps[name]

    def run_payloads(self, *, failed: bool = False) -> bool:
        """Record run-level payloads, for a run that succeeded or `failed`."""
        return self.run_payload_failed if failed else self.run_payload_ok

    def run_parameters(
        self, parameters: Mapping[str, Any], *, failed_step: str | None = None
    ) -> dict[str, Any] | None:
        """The request parameters a run-level preview may show (None: no run-level payload)
        for an invocation that failed in `failed_step`, or did not fail."""
        if not self.run_payloads(failed=failed_step is not None):
            return None
        withheld = self.run_values.parameters(failed_step)
        return {name: value for name, value in parameters.items() if name not in withheld}

    def run_outputs(self, outputs: Mapping[str, Any]) -> dict[str, Any] | None:
        """The pipeline outputs a run-level preview may show (None: no run-level payload)."""
        if not self.run_payloads():
            return None
        withheld = self.run_values.withheld_outputs
        return {name: value for name, value in outputs.items() if name not in withheld}

    @property
    def any_payload(self) -> bool:
        """Some payload may reach a sink; False allows a fast path with ids and timings only."""
        return (
            self.run_payload_ok
            or self.run_payload_failed
            or any(s.any_payload for s in self.steps.values())
        )

    def preview(self, value: Any) -> Preview:
        """A preview of a run-level value, with the pipeline's size limit and redaction list."""
        return preview(value, max_bytes=self.max_bytes, extra_fields=self.redact)

    def attributes(self) -> dict[str, str | bool]:
        """Payload-free facts about the decision, for the root span and log events."""
        return {
            "capture.mode": self.mode.value,
            "capture.mode_source": self.mode_source,
            "capture.sampled": self.sampled,
            "capture.record_run": self.record_run,
            "capture.override_applied": self.override_applied,
            "capture.override_ignored": self.override_ignored,
        }
