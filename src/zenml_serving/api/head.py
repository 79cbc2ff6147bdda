"""HEAD on every GET route: the GET answer without its body.

Load balancers and uptime checkers probe with HEAD; Litestar routes HEAD only to handlers
declared for it (and refuses a HEAD handler that returns a body), so `HEAD /health` was a 405.
This ASGI layer, outside the router, hands a HEAD request to the app as a GET and sends the
status and headers (`Content-Length` included, as HTTP asks) without the body. Event streams
are left out: their GET never ends, so HEAD there stays the router's 405.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, cast

from litestar.enums import ScopeType

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HeadAsGet"]

_STREAM_PATH = re.compile(r"(?:^|/)stream(?:/|$)")


class HeadAsGet:
    """Wraps an ASGI app: HEAD is answered as GET, without the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != ScopeType.HTTP
            or scope["method"] != "HEAD"
            or _STREAM_PATH.search(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        ended = False

        async def send_without_body(message: Message) -> None:
            nonlocal ended
            if message["type"] == "http.response.body":
                if ended:
                    return
                ended = True
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        as_get = cast("Scope", {**scope, "method": "GET"})
        await self.app(as_get, receive, send_without_body)
