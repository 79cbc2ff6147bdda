"""Baseline (b): a bare Litestar app with one JSON POST endpoint: the framework ceiling.

    granian --interface asgi --host 127.0.0.1 --port 8102 --workers 1 --runtime-threads 1 \
        --loop uvloop bench.baselines.bare_litestar:app

The body is a msgspec Struct (Litestar's fastest validated path), the work is baselines.work,
the answer is the same shape as zenml-serving's. No plugins, no middleware, no DI.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar, get, post

from bench.baselines.work import answer

__all__ = ["app"]


class InvokeRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The request body: the pipeline parameters."""

    parameters: dict[str, Any] = msgspec.field(default_factory=dict)


@post("/invoke", status_code=200)
async def invoke(data: InvokeRequest) -> dict[str, Any]:
    """Same JSON in/out as zenml-serving, trivial work."""
    return answer(data.parameters)


@get("/health")
async def health() -> dict[str, str]:
    """Readiness."""
    return {"status": "ok"}


app = Litestar(route_handlers=[invoke, health], logging_config=None, debug=False)
