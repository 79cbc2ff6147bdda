"""Route handlers of the playground: `GET /` redirects to `GET /playground`, the page; its
assets are static files under `/playground/static/`.

None of these routes touch the pipeline: they serve files, so they are marked
`exclude_from_auth` (the page itself asks for the API key when the API answers 401).

The assets are the handful of files in `static/`, read once at startup and served by name
from memory, not Litestar's static files router: that one maps the request path onto the
filesystem, so `/playground/static/%00` was a 500 (`embedded null byte`) and
`/playground/static/.` a 404 naming the folder's absolute path. Here a name that is not one
of the files is a plain 404, whatever its bytes.
"""

from __future__ import annotations

import functools
import html
import mimetypes
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litestar import MediaType, Request, Response, get
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect

if TYPE_CHECKING:
    from litestar.handlers import HTTPRouteHandler

__all__ = ["PLAYGROUND_PATH", "STATIC_DIR", "playground_handlers"]

PLAYGROUND_PATH = "/playground"
STATIC_DIR = Path(__file__).resolve().parent / "static"
_INDEX = Path(__file__).resolve().parent / "index.html"
_BASE_MARKER = "{{base}}"

# Everything the page loads or calls comes from this service: nothing else is allowed.
_CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'self'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
_PAGE_HEADERS = {
    "Content-Security-Policy": _CSP,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_OPT: dict[str, Any] = {"exclude_from_auth": True}


@functools.cache
def _index_template() -> str:
    return _INDEX.read_text(encoding="utf-8")


@functools.cache
def _assets() -> dict[str, tuple[bytes, str]]:
    """Every file of `static/` by name: its bytes and media type."""
    assets: dict[str, tuple[bytes, str]] = {}
    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file():
            media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            assets[path.name] = (path.read_bytes(), media_type)
    return assets


def _root_path(request: Request[Any, Any, Any]) -> str:
    """The prefix the service is mounted under (ASGI `root_path`), without a trailing slash."""
    return str(request.scope.get("root_path") or "").rstrip("/")


def playground_handlers() -> list[HTTPRouteHandler]:
    """The playground's route handlers, new objects on every call (one set per app)."""

    @get("/", include_in_schema=False, opt=_OPT, name="playground-root")
    async def root(request: Request[Any, Any, Any]) -> Redirect:
        """The service's front door is the playground."""
        return Redirect(path=_root_path(request) + PLAYGROUND_PATH, status_code=302)

    @get(PLAYGROUND_PATH, include_in_schema=False, opt=_OPT, name="playground-page")
    async def page(request: Request[Any, Any, Any]) -> Response[str]:
        """The page; its `<base>` makes every relative URL in it resolve under the mount."""
        base = html.escape(_root_path(request) + PLAYGROUND_PATH + "/", quote=True)
        return Response(
            _index_template().replace(_BASE_MARKER, base),
            media_type=MediaType.HTML,
            headers=_PAGE_HEADERS,
        )

    assets = _assets()

    @get(
        PLAYGROUND_PATH + "/static/{name:str}",
        include_in_schema=False,
        opt=_OPT,
        name="playground-static",
        cache_control=CacheControlHeader(no_cache=True),
    )
    async def static(name: FromPath[str]) -> Response[bytes]:
        """One of the page's files, by name; anything else is a 404 that names nothing."""
        asset = assets.get(name)
        if asset is None:
            raise NotFoundException("no such playground file")
        content, media_type = asset
        return Response(content, media_type=media_type)

    return [root, page, static]
