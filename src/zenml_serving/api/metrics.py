"""`GET /metrics`: the Prometheus exposition of this service (every worker, merged).

Needs the auth key when one is set (it names the pipeline and its steps), unless
ZENML_SERVING_METRICS_AUTH=false leaves it open for scrapers; excluded from tracing, left
out of the OpenAPI schema.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency

from zenml_serving.api.context import AppContext
from zenml_serving.api.responses import problem_responses
from zenml_serving.api.security import METRICS_ROUTE
from zenml_serving.telemetry import metrics as service_metrics
from zenml_serving.telemetry.metrics import sample_state

__all__ = ["metrics"]


@get(
    "/metrics",
    summary="Prometheus metrics",
    tags=["ops"],
    include_in_schema=False,
    opt={METRICS_ROUTE: True},
    responses=problem_responses(401),
)
async def metrics(
    request: Request[Any, Any, Any], ctx: NamedDependency[AppContext]
) -> Response[bytes]:
    """Prometheus text (or OpenMetrics if the scraper asks for it), gauges sampled now."""
    await sample_state(ctx.manager, ctx.tracking)
    body, content_type = service_metrics.render(request.headers.get("accept"))
    # As a header, not media_type: Litestar appends a second `; charset=` to any text/ media
    # type, and Prometheus 3 refuses a Content-Type it cannot parse.
    return Response(body, headers={"content-type": content_type})
