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

__all__ = ["AppContext", "DeploymentIdentity"]


class DeploymentIdentity:
    """The ZenML deployment record this service answers for (ZenML's `metadata`): the one it
    was loaded from, or the one it registered itself as (`ZENML_SERVING_DEPLOYMENT_NAME`)."""

    __slots__ = ("id", "name")

    def __init__(self, deployment_id: str | None = None, name: str | None = None) -> None:
        self.id = deployment_id
        self.name = name

    def current(self) -> tuple[str | None, str | None]:
        """`(id, name)`, either None when unknown."""
        return self.id, self.name


class AppContext:
    """Everything a request handler may need, built once by create_app."""

    __slots__ = (
        "capture_plan",
        "config",
        "deployment",
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
        deployment: DeploymentIdentity | None = None,
    ) -> None:
        self.config = config
        self.deployment = deployment if deployment is not None else DeploymentIdentity()
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
