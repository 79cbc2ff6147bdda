"""zenml-serving: serve a ZenML pipeline snapshot in-process over HTTP.

The public surface: `create_app` (the Litestar app factory granian calls), `ServingConfig`
(every setting, from the environment), and the capture hints a pipeline author puts in step
annotations, `Capture` (inputs) and `CapturedOutput` (outputs, a ZenML `ArtifactConfig`),
and `emit`, which a step calls to stream partial output while it runs (a no-op outside serving).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zenml_serving.capture.markers import Capture
from zenml_serving.config import ServingConfig

if TYPE_CHECKING:
    from zenml_serving.app import create_app
    from zenml_serving.capture.outputs import CapturedOutput
    from zenml_serving.engine.chunks import emit

__version__ = "0.1.0"

__all__ = ["Capture", "CapturedOutput", "ServingConfig", "__version__", "create_app", "emit"]


def __getattr__(name: str) -> Any:
    # Imported on first use: `create_app` pulls in Litestar, `CapturedOutput` ZenML, `emit`
    # pydantic and msgspec.
    if name == "create_app":
        from zenml_serving.app import create_app

        return create_app
    if name == "CapturedOutput":
        from zenml_serving.capture.outputs import CapturedOutput

        return CapturedOutput
    if name == "emit":
        from zenml_serving.engine.chunks import emit

        return emit
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
