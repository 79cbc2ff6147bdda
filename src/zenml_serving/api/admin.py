"""Operator routes: `POST /admin/reload` switches the service to a freshly loaded version.

Reloading reads the ZenML store, loads artifacts and runs the pipeline's `on_init`: work an
anonymous caller must not be able to trigger at will. So the route needs the API key and is off
(403) on a service without one, even though the rest of such a service is open.
"""

from __future__ import annotations

from typing import Any

from litestar import Response, post
from litestar.di import NamedDependency

from zenml_serving.api.context import AppContext
from zenml_serving.api.errors import problem
from zenml_serving.api.responses import problem_responses

__all__ = ["reload"]


@post(
    "/admin/reload",
    summary="Reload the served artifacts, model versions and pipeline state",
    tags=["admin"],
    status_code=200,
    responses=problem_responses(401, 403, 503),
)
async def reload(ctx: NamedDependency[AppContext]) -> Response[dict[str, Any]]:
    """Build a new served version beside the current one (resolve and load the snapshot's
    artifacts and model versions again, run `on_init`) and swap it in; invocations in flight
    finish on the old one. A failure keeps the old version serving (503, `detail` says why).
    The answer is this worker's; with several workers the others follow within a second."""
    if ctx.config.auth_key is None:
        raise problem(
            403,
            "admin-disabled",
            "Admin routes are disabled",
            "set ZENML_SERVING_AUTH_KEY: /admin routes need the API key",
        )
    outcome = await ctx.reloader.reload("admin")
    if outcome.status == "failed":
        raise problem(
            503,
            "reload-failed",
            "Reload failed",
            f"{outcome.error}; version {outcome.version.number} keeps serving",
            serving_version=outcome.version.number,
        )
    return Response({**outcome.describe(), "version": outcome.version.describe()}, status_code=200)
