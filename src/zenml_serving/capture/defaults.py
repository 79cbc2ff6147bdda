"""The service-wide capture defaults: the lowest layer of every precedence chain.

Built once from `ServingConfig` (`ZENML_SERVING_CAPTURE_*`, `ZENML_SERVING_CREATE_RUNS`), which
has already validated the environment; the constructor validates again so that tests and other
callers cannot build an impossible default either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from zenml_serving.capture.errors import CaptureConfigError
from zenml_serving.capture.policy import CaptureMode, parse_mode, parse_sample_rate

if TYPE_CHECKING:
    from zenml_serving.config import ServingConfig

__all__ = ["CaptureDefaults"]

_WHERE = "service defaults"


@dataclass(frozen=True, slots=True)
class CaptureDefaults:
    """What applies when neither the step, the request nor the pipeline decides."""

    mode: CaptureMode = CaptureMode.FULL
    """ZENML_SERVING_CAPTURE_DEFAULT."""
    sample_rate: float = 0.1
    """ZENML_SERVING_CAPTURE_SAMPLE_RATE."""
    max_bytes: int = 262_144
    """ZENML_SERVING_CAPTURE_MAX_BYTES."""
    redact: tuple[str, ...] = ()
    """ZENML_SERVING_CAPTURE_REDACT: extra field names, lower-cased."""
    override_allowed: bool = True
    """ZENML_SERVING_CAPTURE_OVERRIDE=allow; when False, request overrides are ignored."""
    create_runs: bool = True
    """ZENML_SERVING_CREATE_RUNS: False turns off every ZenML run record and artifact."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", parse_mode(self.mode, where=_WHERE, key="'mode'"))
        object.__setattr__(self, "sample_rate", parse_sample_rate(self.sample_rate, where=_WHERE))
        size = self.max_bytes
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise CaptureConfigError(
                _WHERE, "'max_bytes'", f"= {self.max_bytes!r} is not a size", allowed="an int > 0"
            )
        names = tuple(dict.fromkeys(n.strip().lower() for n in self.redact if n.strip()))
        object.__setattr__(self, "redact", names)

    @classmethod
    def from_config(cls, config: ServingConfig) -> CaptureDefaults:
        """The defaults the environment configured."""
        return cls(
            mode=CaptureMode(config.capture_default),
            sample_rate=config.capture_sample_rate,
            max_bytes=config.capture_max_bytes,
            redact=tuple(config.capture_redact),
            override_allowed=config.capture_override == "allow",
            create_runs=config.create_runs,
        )
