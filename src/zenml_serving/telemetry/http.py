"""The outermost ASGI layer: the server span, request metrics, the access log, open streams.

Installed around the whole Litestar app (`install`), outside its exception handling, so the
status counted and traced is the one that really leaves, including responses that Litestar
builds for exceptions raised by middleware (its built-in Prometheus middleware records those
as 200 or not at all). The route template is the one Litestar's router found
(`scope["path_template"]`), read once the response is complete and used for all three: the
router runs once per request (resolving it up front ran it twice, ~5 % of a sync /invoke).

Server span: `{METHOD} {route template}` (`WS {route}` for a WebSocket; started as `{METHOD}`
and renamed once routed, as OpenTelemetry's conventions allow), kind SERVER,
continuing an incoming W3C `traceparent`/`tracestate` (through the configured propagators),
current while the app runs so that the invocation span and the job record see it; stable HTTP
semantic-convention attributes (`http.request.method`, `http.route`, `url.path`, `url.scheme`,
`http.response.status_code`, `client.address`, `user_agent.original`; `error.type` and an
error status for 5xx and exceptions), never the query string. Every response of a traced
request carries `x-trace-id` and `traceresponse`. Probes and scrapes (`QUIET_ROUTES`) make no
span. This replaces Litestar's OpenTelemetry plugin, whose ASGI middleware cost ~11 % of
throughput on its own even for unsampled requests (BENCHMARKS.md, *Observability overhead*):
same conventions, one layer, attributes computed only for a span that records.

Metrics: durations run to the last body byte; for `text/event-stream` responses to the
headers (a stream's lifetime is not latency: `zenml_serving_open_streams` counts streams).

The access log is one structlog event per request (`http_request`): method, route template,
path without the query string (which may carry secrets), status, duration, response bytes,
client address, trace and span ids. No headers, no bodies. Quiet routes log at DEBUG.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, cast

import structlog
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.asgi import asgi_getter
from opentelemetry.trace import SpanKind, Status, StatusCode

from zenml_serving.telemetry import metrics
from zenml_serving.telemetry.tracing import UNMATCHED_ROUTE, format_trace_id

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    from opentelemetry.trace import Span, Tracer

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]
    ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = ["QUIET_ROUTES", "HttpTelemetry", "install", "server_span_name"]

QUIET_ROUTES = frozenset({"/health", "/livez", "/metrics"})
"""Probes and scrapes: no span, access-log lines at DEBUG (they are still counted)."""

_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
_EVENT_STREAM = b"text/event-stream"
_ACCESS = "zenml_serving.access"
_access_log = structlog.stdlib.get_logger(_ACCESS)
_access_level = logging.getLogger(_ACCESS)


def server_span_name(scope: Scope, route: str) -> str:
    """`POST /invoke`, `GET /jobs/{job_id}`, `WS /stream`: low cardinality, never the path."""
    if scope["type"] == "websocket":
        return f"WS {route}"
    return f"{_method(scope)} {route}"


def _route(scope: Scope) -> str:
    """The route template Litestar's router put in `scope`; `unmatched` when none (404)."""
    return scope.get("path_template") or UNMATCHED_ROUTE


def _quiet(scope: Scope) -> bool:
    """A probe or scrape, told from the path before routing (those routes take no params)."""
    path: str = scope.get("path", "")
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    return path in QUIET_ROUTES


def _method(scope: Scope) -> str:
    # Clients choose the method: anything non-standard is one value, as in OTel's conventions.
    method = str(scope.get("method", ""))
    return method if method in _METHODS else "_OTHER"


class HttpTelemetry:
    """ASGI middleware; see the module docstring. `tracer` None: no spans, no trace headers."""

    def __init__(
        self, app: ASGIApp, *, metrics_enabled: bool, access_log: bool, tracer: Tracer | None
    ) -> None:
        self.app = app
        self.metrics_enabled = metrics_enabled
        self.access_log = access_log
        self.tracer = tracer
        # The headers the configured propagators read (traceparent, tracestate, baggage by
        # default): a request with none of them starts a new trace without parsing anything.
        self._propagated = frozenset(
            name.lower().encode("latin-1") for name in propagate.get_global_textmap().fields
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket" and (self.metrics_enabled or self.tracer is not None):
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def _start_span(self, scope: Scope) -> tuple[Span, object] | None:
        """The server span, made current; None for quiet routes or with tracing off. Named
        for the method until the route is known (`_name_span`)."""
        if self.tracer is None or _quiet(scope):
            return None
        propagated = self._propagated
        parent = None
        if any(name in propagated for name, _ in scope.get("headers") or ()):
            parent = propagate.extract(cast("dict[str, Any]", scope), getter=asgi_getter)
        span = self.tracer.start_span(
            "WS" if scope["type"] == "websocket" else _method(scope),
            context=parent,
            kind=SpanKind.SERVER,
        )
        if span.is_recording():
            attributes: dict[str, Any] = {
                "url.path": scope.get("path", ""),
                "url.scheme": scope.get("scheme", "http"),
            }
            if scope["type"] == "http":
                attributes["http.request.method"] = _method(scope)
            client = scope.get("client")
            if client:
                attributes["client.address"] = client[0]
            for name, value in scope.get("headers") or ():
                if name == b"user-agent":
                    attributes["user_agent.original"] = value.decode("latin-1")
                    break
            span.set_attributes(attributes)
        return span, otel_context.attach(trace.set_span_in_context(span))

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        traced = self._start_span(scope)
        accepted = False

        async def watch(message: Message) -> None:
            nonlocal accepted
            if message["type"] == "websocket.accept" and not accepted:
                accepted = True
                if self.metrics_enabled:
                    metrics.OPEN_STREAMS.labels(kind="websocket").inc()
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except BaseException as error:
            if traced is not None:
                _record_exception(traced[0], error)
            raise
        finally:
            if accepted and self.metrics_enabled:
                metrics.OPEN_STREAMS.labels(kind="websocket").dec()
            if traced is not None:
                _name_span(traced[0], scope, _route(scope))
                _end(traced)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        traced = self._start_span(scope)
        span = traced[0] if traced is not None else None
        status: int | None = None
        stream = False
        finished: float | None = None
        recorded = False
        sent = 0

        async def watch(message: Message) -> None:
            nonlocal status, stream, finished, recorded, sent
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = message.get("headers") or ()
                for name, value in headers:
                    if name.lower() == b"content-type":
                        stream = value.startswith(_EVENT_STREAM)
                        break
                if span is not None:
                    message = {**message, "headers": [*headers, *_trace_headers(span)]}
                if stream:
                    finished = time.perf_counter()
                    if self.metrics_enabled:
                        metrics.OPEN_STREAMS.labels(kind="sse").inc()
            elif message["type"] == "http.response.body":
                sent += len(message.get("body") or b"")
                if not recorded and not message.get("more_body", False):
                    # Counted before the last byte goes out: a client holding a response
                    # finds it in the metrics.
                    self._done(
                        scope,
                        _route(scope),
                        status,
                        (finished or time.perf_counter()) - started,
                        sent,
                        span,
                    )
                    recorded = True
            await send(message)

        raised = False
        try:
            await self.app(scope, receive, watch)
        except BaseException as error:
            raised = True
            if status is None:
                status = 500  # the server answers 500 for an app that raised before answering
            if span is not None:
                _record_exception(span, error)
            raise
        finally:
            if stream and self.metrics_enabled:
                metrics.OPEN_STREAMS.labels(kind="sse").dec()
            if not recorded:  # no complete response: an error or the client went away
                duration = (finished or time.perf_counter()) - started
                self._done(scope, _route(scope), status, duration, sent, span)
            if traced is not None:
                _name_span(traced[0], scope, _route(scope))
                _finish_http_span(traced[0], status, raised=raised)
                _end(traced)

    def _done(  # noqa: PLR0917 - a private call site, positional reads best
        self,
        scope: Scope,
        route: str,
        status: int | None,
        duration_s: float,
        sent: int,
        span: Span | None,
    ) -> None:
        """The response is complete (or will never be): count it and log it."""
        method = _method(scope)
        if self.metrics_enabled:
            # No response at all: the client went away first (nginx's 499).
            code = str(status) if status is not None else "499"
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
            "status": status if status is not None else 499,
            "duration_ms": round(duration_s * 1000, 3),
            "response_bytes": sent,
        }
        client = scope.get("client")
        if client:
            fields["client"] = client[0]
        span_context = span.get_span_context() if span is not None else None
        if span_context is not None and span_context.is_valid:
            fields["trace_id"] = format_trace_id(span_context.trace_id)
            fields["span_id"] = format(span_context.span_id, "016x")
        _access_log.log(level, "http_request", **fields)


def _trace_headers(span: Span) -> tuple[tuple[bytes, bytes], ...]:
    """`x-trace-id` (what clients quote to support) and W3C `traceresponse`."""
    span_context = span.get_span_context()
    trace_id = format_trace_id(span_context.trace_id)
    flags = format(int(span_context.trace_flags), "02x")
    return (
        (b"x-trace-id", trace_id.encode()),
        (b"traceresponse", f"00-{trace_id}-{span_context.span_id:016x}-{flags}".encode()),
    )


def _name_span(span: Span, scope: Scope, route: str) -> None:
    if not span.is_recording():
        return
    span.update_name(server_span_name(scope, route))
    span.set_attribute("http.route", route)


def _finish_http_span(span: Span, status: int | None, *, raised: bool) -> None:
    """Status code; an error for 5xx (4xx are the client's errors, not the server span's)
    unless an exception already said what went wrong. No status: the client left first."""
    if not span.is_recording():
        return
    if status is not None:
        span.set_attribute("http.response.status_code", status)
        if status >= 500 and not raised:
            span.set_attribute("error.type", str(status))
            span.set_status(Status(StatusCode.ERROR))


def _record_exception(span: Span, error: BaseException) -> None:
    """The exception's type only: its message may quote a request (the capture policy's
    `error_detail` governs messages, on the step that failed)."""
    if span.is_recording():
        error_type = type(error).__qualname__
        span.add_event("exception", {"exception.type": error_type})
        span.set_attribute("error.type", error_type)
        span.set_status(Status(StatusCode.ERROR, error_type))


def _end(traced: tuple[Span, object]) -> None:
    span, token = traced
    otel_context.detach(token)  # type: ignore[arg-type]
    span.end()


def install(app: Any, *, metrics_enabled: bool, access_log: bool, tracer: Tracer | None) -> None:
    """Wrap `app`'s whole ASGI handler (Litestar builds it in its constructor)."""
    app.asgi_handler = HttpTelemetry(
        app.asgi_handler, metrics_enabled=metrics_enabled, access_log=access_log, tracer=tracer
    )
