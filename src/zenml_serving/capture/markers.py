"""`Capture`: the per-input capture hint written in a step's type annotation.

    @step
    def score(city: str, token: Annotated[str, Capture("none")]) -> float: ...

ZenML 0.98 accepts (and ignores) such metadata on step inputs. This module does not import
ZenML, so pipeline code and the service can use it cheaply. Outputs take `CapturedOutput`
instead (`zenml_serving.capture.outputs`), because ZenML only allows a name or an
`ArtifactConfig` in an output's annotation.
"""

from __future__ import annotations

from dataclasses import dataclass

from zenml_serving.capture.policy import CaptureMode, parse_mode

__all__ = ["Capture"]


@dataclass(frozen=True, slots=True, init=False)
class Capture:
    """Capture hint for one step input: `Annotated[T, Capture("metadata")]`.

    The hint has the lowest precedence of the per-value layers: a per-value entry in the
    step's or the pipeline's `serving_capture` declaration beats it for that value.
    """

    mode: CaptureMode

    def __init__(self, mode: CaptureMode | str) -> None:
        object.__setattr__(
            self, "mode", parse_mode(mode, where="Capture(...) annotation", key="mode")
        )

    def __repr__(self) -> str:
        return f"Capture({self.mode.value!r})"
