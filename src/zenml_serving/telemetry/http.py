"""The outermost ASGI layer: request metrics, the access log, trace headers, open streams.

Installed around the whole Litestar app (`install`), outside its exception handling, so the
status counted is the one that really leaves, including responses that Litestar builds for
exceptions raised by middleware (its built-in Prometheus middleware records those as 200 or
not at all). Durations run to the last body byte; for `text/event-stream` responses to the
headers (a stream's lifetime is not latency: `zenml_serving_open_streams` counts streams).

The access log is one structlog event per request (`http_request`): method, route template,
path without the query string (which may carry secrets), status, duration, response bytes,
client address, trace and span ids. No headers, no bodies. `/health` and `/metrics` log at
DEBUG.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import structlog

from zenml_serving.telemetry import metrics
from zenml_serving.telemetry.tracing import UNMATCHED_ROUTE, format_trace_id, route_of

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    from opentelemetry.trace import Span

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]
    ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = ["QUIET_ROUTES", "HttpTelemetry", "install", "remember_server_span"]

QUIET_ROUTES = frozenset({"/health", "/metrics"})
"""Routes whose access-log lines go out at DEBUG (probes and scrapes)."""

_SPAN_KEY = "zenml_serving.server_span"
_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
_ACCESS = "zenml_serving.access"
_access_log = structlog.stdlib.get_logger(_ACCESS)
_access_level = logging.getLogger(_ACCESS)


def remember_server_span(span: Span, scope: dict[str, Any]) -> None:
    """OpenTelemetry server-request hook: keep the server span's context in the scope."""
    scope[_SPAN_KEY] = span.get_span_context()


class HttpTelemetry:
    """ASGI middleware; see the module docstring."""

    def __init__(self, app: ASGIApp, *, metrics_enabled: bool, access_log: bool) -> None:
        self.app = app
        self.metrics_enabled = metrics_enabled
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket" and self.metrics_enabled:
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        gauge = metrics.OPEN_STREAMS.labels(kind="websocket")
        accepted = False

        async def watch(message: Message) -> None:
            nonlocal accepted
            if message["type"] == "websocket.accept" and not accepted:
                accepted = True
                gauge.inc()
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            if accepted:
                gauge.dec()

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status: int | None = None
        stream = False
        finished: float | None = None
        recorded = False
        sent = 0

        async def watch(message: Message) -> None:
            nonlocal status, stream, finished, recorded, sent
            kind = message["type"]
            if kind == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers") or ())
                stream = any(
                    k.lower() == b"content-type" and v.startswith(b"text/event-stream")
                    for k, v in headers
                )
                span_context = scope.get(_SPAN_KEY)
                if span_context is not None and span_context.is_valid:
                    trace_id = format_trace_id(span_context.trace_id)
                    flags = format(int(span_context.trace_flags), "02x")
                    headers.append((b"x-trace-id", trace_id.encode()))
                    headers.append(
                        (
                            b"traceresponse",
                            f"00-{trace_id}-{span_context.span_id:016x}-{flags}".encode(),
                        )
                    )
                    message = {**message, "headers": headers}
                if stream:
                    finished = time.perf_counter()
                    if self.metrics_enabled:
                        metrics.OPEN_STREAMS.labels(kind="sse").inc()
            elif kind == "http.response.body":
                sent += len(message.get("body") or b"")
                if not message.get("more_body", False) and not recorded:
                    # Counted before the last byte goes out: a client holding a response
                    # finds it in the metrics.
                    now = time.perf_counter()
                    self._record(scope, status, (finished or now) - started, sent)
                    recorded = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except BaseException:
            if status is None:
                status = 500  # the server answers 500 for an app that raised before answering
            raise
        finally:
            if stream and self.metrics_enabled:
                metrics.OPEN_STREAMS.labels(kind="sse").dec()
            if not recorded:  # no complete response: an error or the client went away
                self._record(scope, status, (finished or time.perf_counter()) - started, sent)

    def _record(self, scope: Scope, status: int | None, duration_s: float, sent: int) -> None:
        route = route_of(scope) or UNMATCHED_ROUTE
        method = str(scope.get("method", ""))
        # Clients choose the method: anything non-standard is one label value, as in OTel.
        method = method if method in _METHODS else "_OTHER"
        # No response at all: the client went away first (nginx's 499).
        code = str(status) if status is not None else "499"
        if self.metrics_enabled:
            metrics.child(metrics.HTTP_REQUESTS, route, method, code).inc()
            metrics.child(metrics.HTTP_REQUEST_DURATION, route, method).observe(duration_s)
        if not self.access_log:
            return
        level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
        if not _access_level.isEnabledFor(level):
            return
        fields: dict[str, Any] = {
            "method": method,
            "route": route,
            "path": scope.get("path", ""),
            "status": int(code),
            "duration_ms": round(duration_s * 1000, 3),
            "response_bytes": sent,
        }
        client = scope.get("client")
        if client:
            fields["client"] = client[0]
        span_context = scope.get(_SPAN_KEY)
        if span_context is not None and span_context.is_valid:
            fields["trace_id"] = format_trace_id(span_context.trace_id)
            fields["span_id"] = format(span_context.span_id, "016x")
        _access_log.log(level, "http_request", **fields)


def install(app: Any, *, metrics_enabled: bool, access_log: bool) -> None:
    """Wrap `app`'s whole ASGI handler (Litestar builds it in its constructor)."""
    app.asgi_handler = HttpTelemetry(
        app.asgi_handler, metrics_enabled=metrics_enabled, access_log=access_log
    )
