"""Capture policies: what each invocation may record, and the redaction everything passes through.

Pure functions and immutable objects, no I/O. The service builds one `CapturePlan` at startup
(`build_capture_plan`, which validates every declaration and hint) and resolves it once per
invocation (`CapturePlan.resolve`) into an `InvocationCapture` that ZenML run tracking, span
attributes and log events all consult. Payloads reach those sinks only through `redact` /
`preview`.

`CapturedOutput` subclasses ZenML's `ArtifactConfig`, so it is imported lazily: importing this
package does not import ZenML.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zenml_serving.capture.defaults import CaptureDefaults
from zenml_serving.capture.detectors import (
    SENSITIVE_FIELD_PARTS,
    is_card_number,
    is_sensitive_field,
    luhn_valid,
    mask_secrets,
)
from zenml_serving.capture.errors import CaptureConfigError
from zenml_serving.capture.hints import CaptureHints, read_capture_hints
from zenml_serving.capture.markers import Capture
from zenml_serving.capture.plan import CapturePlan, PipelineLike, StepLike, build_capture_plan
from zenml_serving.capture.policy import CaptureDeclaration, CaptureMode, parse_declaration
from zenml_serving.capture.redaction import REDACTED, Preview, describe_value, preview, redact
from zenml_serving.capture.resolved import InvocationCapture, StepCapture, ValueCapture
from zenml_serving.capture.sampling import is_sampled, sampling_point

if TYPE_CHECKING:
    from zenml_serving.capture.outputs import CapturedOutput

__all__ = [
    "REDACTED",
    "SENSITIVE_FIELD_PARTS",
    "Capture",
    "CaptureConfigError",
    "CaptureDeclaration",
    "CaptureDefaults",
    "CaptureHints",
    "CaptureMode",
    "CapturePlan",
    "CapturedOutput",
    "InvocationCapture",
    "PipelineLike",
    "Preview",
    "StepCapture",
    "StepLike",
    "ValueCapture",
    "build_capture_plan",
    "describe_value",
    "is_card_number",
    "is_sampled",
    "is_sensitive_field",
    "luhn_valid",
    "mask_secrets",
    "parse_declaration",
    "preview",
    "read_capture_hints",
    "redact",
    "sampling_point",
]


def __getattr__(name: str) -> Any:
    if name == "CapturedOutput":
        from zenml_serving.capture.outputs import CapturedOutput

        return CapturedOutput
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
