"""How many event streams (SSE and WebSockets) may be open at once, in all and per client.

A stream holds its connection for as long as its job runs, and granian serves at most
`--backpressure` connections per worker at once (default: backlog 1024 / workers): without a
cap, ~1,000 idle streams leave no connection for `/health` or `/invoke`. So this process
admits at most ZENML_SERVING_MAX_STREAMS streams (one more: `503 streams-exhausted`) and at
most ZENML_SERVING_MAX_STREAMS_PER_CLIENT per client address (one more: `429
too-many-streams`), both with `Retry-After`; a refused WebSocket is accepted and closed at once
with code 1013 (total) or 4429 (per client) and the reason, which a browser can read (a
refused handshake is an opaque failure there). `zenml-serving serve` sizes granian's
backpressure above the stream cap (`granian_backpressure`), so probes and invocations still
get a connection while streams are at the cap.

The admission is an ASGI middleware rather than code in the handlers: the slot must be given
back when the connection ends, whichever way it ends (job over, client gone, server closing),
and only the layer that awaits the whole ASGI call sees every one of those ends. It costs the
other routes one `opt` lookup.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware

from zenml_serving.api.errors import problem
from zenml_serving.api.security import refuse_socket

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send

    from zenml_serving.config import ServingConfig

__all__ = [
    "STREAM_ROUTE",
    "STREAM_WHEN_MODE_STREAM",
    "StreamAdmission",
    "StreamLimits",
    "granian_backpressure",
]

STREAM_ROUTE = "stream_route"
"""`opt` key of a route handler whose every call is a stream (`True`), or one that streams
only when its query says `mode=stream` (`STREAM_WHEN_MODE_STREAM`)."""
STREAM_WHEN_MODE_STREAM = "mode=stream"
RETRY_AFTER_S = 5
"""What a refused client is told to wait: a stream lasts as long as its job, unknown here."""
WS_CLOSE_TRY_AGAIN_LATER = 1013
WS_CLOSE_TOO_MANY_STREAMS = 4429
PROBE_RESERVE = 128
"""Connections granian keeps beyond streams and invocations: probes, /status, /metrics."""


class StreamLimits:
    """Counts this process's open streams, in all and per client address."""

    def __init__(self, *, max_total: int, max_per_client: int) -> None:
        self.max_total = max_total
        self.max_per_client = max_per_client
        self._open: Counter[str] = Counter()
        self._total = 0

    @classmethod
    def from_config(cls, config: ServingConfig) -> StreamLimits:
        return cls(max_total=config.max_streams, max_per_client=config.max_streams_per_client)

    @property
    def open(self) -> int:
        """Streams open now."""
        return self._total

    def refusal(self, client: str) -> int | None:
        """None if `client` may open one more stream (and it is counted as open), else the
        status that refuses it: 429 (this client holds its share) or 503 (all are taken)."""
        if self._open[client] >= self.max_per_client:
            return 429
        if self._total >= self.max_total:
            return 503
        self._open[client] += 1
        self._total += 1
        return None

    def release(self, client: str) -> None:
        """One stream of `client` ended."""
        self._total -= 1
        self._open[client] -= 1
        if self._open[client] <= 0:
            del self._open[client]


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _is_stream(scope: Scope) -> bool:
    handler = scope.get("route_handler")
    kind = handler.opt.get(STREAM_ROUTE) if handler is not None else None
    if kind == STREAM_WHEN_MODE_STREAM:
        return b"mode=stream" in scope.get("query_string", b"")
    return bool(kind)


class StreamAdmission(ASGIMiddleware):
    """Admits a stream only within the limits; gives its slot back when the connection ends."""

    scopes = (ScopeType.HTTP, ScopeType.WEBSOCKET)

    def __init__(self, limits: StreamLimits) -> None:
        self.limits = limits
        self.should_bypass_for_scope = _is_not_stream

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        client = _client(scope)
        refused = self.limits.refusal(client)
        if refused is not None:
            await self._refuse(scope, receive, send, refused)
            return
        try:
            await next_app(scope, receive, send)
        finally:
            self.limits.release(client)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int) -> None:
        if status == 429:
            detail = (
                f"this client already holds {self.limits.max_per_client} open streams "
                "(ZENML_SERVING_MAX_STREAMS_PER_CLIENT); close one or retry in "
                f"{RETRY_AFTER_S} s"
            )
        else:
            detail = (
                f"all {self.limits.max_total} event streams of this instance are in use "
                f"(ZENML_SERVING_MAX_STREAMS); retry in {RETRY_AFTER_S} s or poll "
                "GET /jobs/{id}"
            )
        if scope["type"] == ScopeType.WEBSOCKET:
            code = WS_CLOSE_TOO_MANY_STREAMS if status == 429 else WS_CLOSE_TRY_AGAIN_LATER
            await refuse_socket(scope, receive, send, code, detail)
            return
        raise problem(
            status,
            "too-many-streams" if status == 429 else "streams-exhausted",
            "Too many streams" if status == 429 else "Streams exhausted",
            detail,
            headers={"Retry-After": str(RETRY_AFTER_S)},
            retry_after_s=RETRY_AFTER_S,
        )


def _is_not_stream(scope: Scope) -> bool:
    return not _is_stream(scope)


def granian_backpressure(config: ServingConfig, default: int) -> int:
    """Connections granian should serve at once per worker: every admitted stream, every
    invocation running or queued, and `PROBE_RESERVE` more, at least granian's `default`."""
    needed = config.max_streams + config.max_concurrency + config.max_queue_size + PROBE_RESERVE
    return max(default, needed)
