"""AppContext: the long-lived objects controllers receive through Litestar's DI.

A plain class on purpose: Litestar hands dependency values to msgspec, which would walk a
dataclass's annotations (and everything they reference) on every request.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pydantic

    from zenml_serving.api.stream_limits import StreamLimits
    from zenml_serving.api.streaming import OpenSockets
    from zenml_serving.capture import CapturePlan
    from zenml_serving.config import ServingConfig
    from zenml_serving.deployment.model import ServedPipeline
    from zenml_serving.engine.reload import Reloader
    from zenml_serving.engine.versions import ServedVersions
    from zenml_serving.execution.manager import ServingExecutionManager
    from zenml_serving.loop_monitor import LoopLagMonitor
    from zenml_serving.tracking.writer import TrackingWriter

__all__ = ["AppContext"]


class AppContext:
    """Everything a request handler may need, built once by create_app."""

    __slots__ = (
        "capture_plan",
        "config",
        "invoke_request_model",
        "loop_monitor",
        "manager",
        "pipeline",
        "ready",
        "reloader",
        "sockets",
        "started_at",
        "streams",
        "tracking",
        "versions",
    )

    def __init__(
        self,
        *,
        config: ServingConfig,
        pipeline: ServedPipeline,
        manager: ServingExecutionManager,
        invoke_request_model: type[pydantic.BaseModel],
        capture_plan: CapturePlan,
        loop_monitor: LoopLagMonitor,
        sockets: OpenSockets,
        streams: StreamLimits,
        versions: ServedVersions,
        reloader: Reloader,
        tracking: TrackingWriter | None = None,
    ) -> None:
        self.config = config
        self.capture_plan = capture_plan
        self.tracking = tracking
        """The ZenML run tracking writer (None when runs are off)."""
        self.pipeline = pipeline
        self.manager = manager
        self.invoke_request_model = invoke_request_model
        self.loop_monitor = loop_monitor
        self.sockets = sockets
        """The open WebSocket sessions (draining closes them with 1001)."""
        self.streams = streams
        """Open event streams against ZENML_SERVING_MAX_STREAMS(_PER_CLIENT)."""
        self.versions = versions
        """The served versions (current, and retired ones still in use)."""
        self.reloader = reloader
        self.started_at = time.time()
        self.ready = False
        """True between the end of startup and the start of draining."""
