"""Who may call the service and what every response tells browsers: bearer-key auth, CORS and
security headers.

Auth (only when ZENML_SERVING_AUTH_KEY is set) is a small ASGI middleware rather than
Litestar's `AbstractAuthenticationMiddleware`: there is no user to build, only one key to
compare in constant time, and a WebSocket needs a close code its client can read (a rejected
handshake is an opaque failure in a browser). Routes marked `opt={"exclude_from_auth": True}`
(the health probes, the playground's files) stay open; `/metrics` too when
ZENML_SERVING_METRICS_AUTH is false.

Browsers cannot set headers on a WebSocket, so the key may also arrive as the subprotocol
`bearer.<base64url(key) without padding>`, offered next to `zenml-serving` (which the server
then selects): `new WebSocket(url, ["zenml-serving", "bearer." + b64url(key)])`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import TYPE_CHECKING

from litestar.config.cors import CORSConfig
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import ASGIMiddleware

if TYPE_CHECKING:
    from collections.abc import Sequence

    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from zenml_serving.config import ServingConfig

__all__ = [
    "EXCLUDE_FROM_AUTH",
    "METRICS_ROUTE",
    "WS_CLOSE_FORBIDDEN_ORIGIN",
    "WS_SUBPROTOCOL",
    "BearerKeyMiddleware",
    "accepted_subprotocol",
    "add_security_headers",
    "cors_config",
    "refuse_socket",
    "socket_origin_refusal",
]

EXCLUDE_FROM_AUTH = "exclude_from_auth"
METRICS_ROUTE = "metrics_route"
"""`opt` key of the `/metrics` handler: open when ZENML_SERVING_METRICS_AUTH is false."""
WS_SUBPROTOCOL = "zenml-serving"
_WS_KEY_PREFIX = "bearer."
_REALM = 'Bearer realm="zenml-serving"'
WS_CLOSE_UNAUTHORIZED = 4401
WS_CLOSE_FORBIDDEN_ORIGIN = 4403
_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}


class BearerKeyMiddleware(ASGIMiddleware):
    """401 (HTTP) or close code 4401 (WebSocket) unless the request carries the key."""

    scopes = (ScopeType.HTTP, ScopeType.WEBSOCKET)
    exclude_opt_key = EXCLUDE_FROM_AUTH

    def __init__(self, key: str, *, guard_metrics: bool) -> None:
        self._key = key.encode()
        if not guard_metrics:
            self.should_bypass_for_scope = _is_metrics_route

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        offered = _offered_key(scope)
        if offered is not None and hmac.compare_digest(offered, self._key):
            await next_app(scope, receive, send)
            return
        detail = (
            "send `Authorization: Bearer <key>` (ZENML_SERVING_AUTH_KEY of this service)"
            if offered is None
            else "the key is not valid for this service"
        )
        if scope["type"] == ScopeType.WEBSOCKET:
            await refuse_socket(scope, receive, send, WS_CLOSE_UNAUTHORIZED, detail)
            return
        challenge = _REALM if offered is None else f'{_REALM}, error="invalid_token"'
        raise NotAuthorizedException(detail=detail, headers={"WWW-Authenticate": challenge})


def _is_metrics_route(scope: Scope) -> bool:
    handler = scope.get("route_handler")
    return handler is not None and bool(handler.opt.get(METRICS_ROUTE))


def _offered_key(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = value.partition(b" ")
            if scheme.lower() == b"bearer" and credentials.strip():
                return credentials.strip()
            return b""
    if scope["type"] == ScopeType.WEBSOCKET:
        for protocol in scope.get("subprotocols", ()):
            if protocol.startswith(_WS_KEY_PREFIX):
                encoded = protocol[len(_WS_KEY_PREFIX) :]
                try:
                    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
                except (binascii.Error, ValueError):
                    return b""
    return None


def accepted_subprotocol(scope: Scope) -> str | None:
    """The subprotocol to accept: ours if the client offered it (a browser fails a socket whose
    offered subprotocols all go unanswered), else none."""
    offered: Sequence[str] = scope.get("subprotocols", ())  # type: ignore[assignment]
    return WS_SUBPROTOCOL if WS_SUBPROTOCOL in offered else None


async def refuse_socket(scope: Scope, receive: Receive, send: Send, code: int, reason: str) -> None:
    """Accept, then close at once with `code` and `reason`: what a browser client can read (a
    refused handshake is an opaque failure there). The reason is cut to the 123 bytes a close
    frame can carry."""
    await receive()  # websocket.connect
    await send(
        {"type": "websocket.accept", "subprotocol": accepted_subprotocol(scope), "headers": []}
    )
    shown = reason.encode()[:123].decode(errors="ignore")
    await send({"type": "websocket.close", "code": code, "reason": shown})


def socket_origin_refusal(scope: Scope, config: ServingConfig) -> str | None:
    """Why a WebSocket must be refused for its `Origin` (None: it may proceed).

    Browsers send `Origin` on every WebSocket and enforce no CORS on it, so a page on any site
    could open a socket here and run the pipeline with the user's network position: the one
    path around the CORS rules of the HTTP routes. A socket is accepted when it has no
    `Origin` (not a browser), when its origin is this service's own (same host and port as
    the `Host` header), or one of ZENML_SERVING_CORS_ORIGINS (`*`: any);
    ZENML_SERVING_WS_CHECK_ORIGIN=false accepts any.
    """
    if not config.ws_check_origin:
        return None
    origin = host = None
    for name, value in scope["headers"]:
        if name == b"origin":
            origin = value.decode("latin-1").strip().rstrip("/")
        elif name == b"host":
            host = value.decode("latin-1").strip().lower()
    if origin is None:
        return None
    if "*" in config.cors_origins or origin in config.cors_origins:
        return None
    scheme, _, rest = origin.lower().partition("://")
    if host is not None and rest and _with_port(rest, scheme) == _with_port(host, scheme):
        return None
    return (
        f"origin {origin[:40]} may not open this socket: not this service's own nor in "
        "ZENML_SERVING_CORS_ORIGINS"
    )


def _with_port(netloc: str, scheme: str) -> str:
    """`host:port`, the scheme's default port filled in (IPv6 brackets kept)."""
    host, sep, port = netloc.rpartition(":")
    if sep and port.isdigit() and not host.endswith(":"):
        return f"{host}:{port}"
    return f"{netloc}:{_DEFAULT_PORTS.get(scheme, '')}"


_SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


async def add_security_headers(message: Message, _: Scope) -> None:
    """`before_send` hook: headers on every response, errors and 404s included (which
    Litestar's layered `response_headers` would miss): an API's answers are not documents,
    frames or cacheable.

    A header the response already has wins (the playground page sets its own
    Content-Security-Policy and Cache-Control). No HSTS: TLS ends at the load balancer or
    ingress in front of the service, which sets it.
    """
    if message["type"] != "http.response.start":
        return
    headers = list(message.get("headers", ()))
    present = {name.lower() for name, _ in headers}
    headers.extend(pair for pair in _SECURITY_HEADERS if pair[0] not in present)
    message["headers"] = headers


def cors_config(config: ServingConfig) -> CORSConfig | None:
    """CORS for the configured origins (None: no CORS headers at all, the default).

    Never `allow_credentials`: the API authenticates with a bearer header the page's script
    sets, not with cookies, so browsers need not (and must not) send ambient credentials.
    """
    if not config.cors_origins:
        return None
    return CORSConfig(
        allow_origins=list(config.cors_origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=[
            "Authorization",
            "Content-Type",
            "Last-Event-ID",
            "traceparent",
            "tracestate",
        ],
        expose_headers=["Retry-After", "Location", "X-Invocation-Id", "traceresponse"],
        allow_credentials=False,
        max_age=600,
    )
