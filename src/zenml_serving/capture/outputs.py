"""`CapturedOutput`: an `ArtifactConfig` that also carries a capture hint for one step output.

    @step
    def answer(q: str) -> Annotated[str, CapturedOutput(name="answer", capture="metadata")]: ...

ZenML 0.98 rejects a third element in an output's `Annotated` and accepts only a name or an
`ArtifactConfig` as the second, but it accepts a subclass of `ArtifactConfig`. The snapshot
stores a plain `ArtifactConfig` (the `capture` field is dropped), so the service reads the hint
from the imported step function's own annotations (`zenml_serving.capture.hints`).

Importing this module imports ZenML (seconds); `zenml_serving.capture` exports it lazily.
"""

from __future__ import annotations

from typing import Any

from pydantic import field_validator
from zenml import ArtifactConfig

from zenml_serving.capture.policy import CaptureMode, parse_mode

__all__ = ["CapturedOutput"]


class CapturedOutput(ArtifactConfig):
    """ZenML's `ArtifactConfig` plus `capture`: the capture mode hint for this output."""

    capture: CaptureMode
    """Capture mode hint; step and pipeline per-value declarations beat it."""

    @field_validator("capture", mode="before")
    @classmethod
    def _known_mode(cls, value: Any) -> CaptureMode:
        return parse_mode(value, where="CapturedOutput(...) annotation", key="capture")
