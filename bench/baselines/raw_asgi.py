"""Baseline (a): a raw ASGI app, no framework: the Python + granian ceiling.

    granian --interface asgi --host 127.0.0.1 --port 8101 --workers 1 --runtime-threads 1 \
        --loop uvloop bench.baselines.raw_asgi:app

`POST /invoke` decodes the JSON body with msgspec, does the trivial work of baselines.work and
answers JSON; `GET /health` answers 200; anything else 404.
"""

from __future__ import annotations

from typing import Any

import msgspec

from bench.baselines.work import answer

__all__ = ["app"]

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode
_JSON = [(b"content-type", b"application/json")]


async def _respond(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*_JSON, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The whole application."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    path, method = scope["path"], scope["method"]
    if path == "/invoke" and method == "POST":
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        try:
            request = _decode(b"".join(chunks))
            parameters = request.get("parameters") or {}
        except (msgspec.DecodeError, AttributeError):
            await _respond(send, 400, b'{"detail":"invalid JSON body"}')
            return
        await _respond(send, 200, _encode(answer(parameters)))
    elif path == "/health" and method == "GET":
        await _respond(send, 200, b'{"status":"ok"}')
    else:
        await _respond(send, 404, b'{"detail":"not found"}')
