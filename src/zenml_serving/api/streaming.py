"""Job event streaming: Server-Sent Events for one job, and a WebSocket for many.

SSE (`GET /stream/{job_id}`): each event carries `id:` (its sequence number in the job), so a
client that reconnects with `Last-Event-ID` (or `?after=N`) gets exactly what it missed, then
the live events; a named `heartbeat` event (no id) goes out every ZENML_SERVING_SSE_HEARTBEAT
seconds while the job is quiet; the stream ends after the job's final event.

WebSocket (`/stream`): JSON messages in both directions; see `WS_PROTOCOL` below.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Annotated, Any

import anyio
import msgspec
import pydantic
from litestar import WebSocket, get, websocket
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath, HeaderParameter, QueryParameter
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.response import ServerSentEvent, ServerSentEventMessage

from zenml_serving.api.context import AppContext
from zenml_serving.api.errors import problem
from zenml_serving.api.request_limits import STATE_KEY, check_parameters
from zenml_serving.api.responses import DocumentedOperation, problem_responses
from zenml_serving.api.security import accepted_subprotocol
from zenml_serving.execution.backend import BackendUnavailableError, Subscription
from zenml_serving.execution.invocation import invocation_from_request
from zenml_serving.execution.manager import ShuttingDownError
from zenml_serving.execution.slots import OverloadedError

__all__ = ["WS_PROTOCOL", "job_event_stream", "stream_job", "stream_socket"]

_RETRY_MS = 2000
_encoder = msgspec.json.Encoder()

WS_PROTOCOL = """
client -> server
  {"type": "invoke", "parameters": {...}, "capture_override": {...}?, "request_id": "..."?}
  {"type": "subscribe", "job_id": "...", "after": 0?}
  {"type": "unsubscribe", "job_id": "..."}
  {"type": "cancel", "job_id": "..."}
  {"type": "ping"}
server -> client
  {"type": "accepted", "request_id", "job_id"}         (and the socket is subscribed to it)
  {"type": "event", "job_id", "event": {...}}           (same event objects as SSE)
  {"type": "cancelled", "job_id", "status"}
  {"type": "error", "request_id"?, "job_id"?, "status", "title", "detail", "errors"?}
  {"type": "ping", "at"} every heartbeat interval; {"type": "pong"} to a ping
close codes: 1003 a frame that is not a JSON object; 1009 a message over the size limit;
             1001 the service is shutting down.
"""


class _WsMessage(msgspec.Struct, forbid_unknown_fields=False):
    type: str
    job_id: str | None = None
    after: int = 0
    request_id: str | None = None


async def _subscribe(ctx: AppContext, job_id: str, after: int) -> Subscription:
    try:
        return await ctx.manager.events.subscribe(job_id, after)
    except KeyError:
        raise problem(
            404, "not-found", "Unknown job", f"no job '{job_id}' (finished jobs expire)"
        ) from None


async def job_event_stream(ctx: AppContext, job_id: str, after: int) -> ServerSentEvent:
    """An SSE response of `job_id`'s events after id `after`, live until its final event."""
    subscription = await _subscribe(ctx, job_id, after)
    heartbeat = ctx.config.sse_heartbeat_s

    async def messages() -> Any:
        yield ServerSentEventMessage(data=None, comment=f"job {job_id}", retry=_RETRY_MS)
        while not subscription.done:
            event = await subscription.next(heartbeat)
            if event is None:
                yield ServerSentEventMessage(
                    event="heartbeat", data=_encoder.encode({"at": time.time()}).decode()
                )
                continue
            yield ServerSentEventMessage(
                event=event.type, id=event.id, data=_encoder.encode(event).decode()
            )

    return ServerSentEvent(
        messages(), headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


@get(
    "/stream/{job_id:str}",
    summary="Stream a job's events (Server-Sent Events)",
    tags=["jobs"],
    media_type="text/event-stream",
    responses=problem_responses(400, 401, 404, 422, 503),
    operation_class=DocumentedOperation,
)
async def stream_job(
    job_id: FromPath[str],
    ctx: NamedDependency[AppContext],
    # Plain ints with a default, not `int | None`: Litestar leaves the bound of an optional
    # parameter out of the OpenAPI document.
    last_event_id: Annotated[int, HeaderParameter(name="Last-Event-ID", ge=0)] = 0,
    after: Annotated[int, QueryParameter(name="after", ge=0)] = 0,
) -> ServerSentEvent:
    """Replay what the client has not seen yet, then stream live until the job ends."""
    return await job_event_stream(ctx, job_id, last_event_id or after)


@websocket("/stream")
async def stream_socket(socket: WebSocket[Any, Any, Any], ctx: NamedDependency[AppContext]) -> None:
    """Submit, subscribe to and cancel jobs over one socket (protocol: WS_PROTOCOL)."""
    await socket.accept(subprotocols=accepted_subprotocol(socket.scope))
    await _SocketSession(socket, ctx).run()


class _SocketSession:
    """One WebSocket connection: a receiver, a sender and a follower task per subscribed job."""

    def __init__(self, socket: WebSocket[Any, Any, Any], ctx: AppContext) -> None:
        self.socket = socket
        self.ctx = ctx
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
        self.following: dict[str, asyncio.Task[None]] = {}

    async def run(self) -> None:
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._send_loop)
                await self._receive_loop()
                group.cancel_scope.cancel()
        except WebSocketDisconnect:
            pass
        finally:
            for task in self.following.values():
                task.cancel()
            with contextlib.suppress(Exception):
                await self.socket.close()

    async def _send_loop(self) -> None:
        heartbeat = self.ctx.config.sse_heartbeat_s
        while True:
            try:
                message = await asyncio.wait_for(self.outbox.get(), heartbeat)
            except asyncio.TimeoutError:
                message = {"type": "ping", "at": time.time()}
            await self.socket.send_json(message)

    async def _receive_loop(self) -> None:
        while True:
            try:
                raw = await self.socket.receive_data(mode="text")
            except WebSocketDisconnect:
                return
            if len(raw) > self.ctx.config.max_request_bytes:
                await self.socket.close(
                    code=1009,
                    reason=f"message over {self.ctx.config.max_request_bytes} bytes "
                    "(ZENML_SERVING_MAX_REQUEST_SIZE)",
                )
                return
            try:
                payload = msgspec.json.decode(raw)
                if not isinstance(payload, dict):
                    raise TypeError
                message = msgspec.convert(payload, _WsMessage)
            except (msgspec.DecodeError, msgspec.ValidationError, TypeError):
                await self.socket.close(code=1003, reason="expected a JSON object with a 'type'")
                return
            await self._handle(message, payload)

    async def _handle(self, message: _WsMessage, payload: dict[str, Any]) -> None:
        if message.type == "ping":
            await self.outbox.put({"type": "pong"})
        elif message.type == "invoke":
            await self._invoke(message, payload)
        elif message.job_id and message.type == "subscribe":
            self._follow(message.job_id, message.after)
        elif message.job_id and message.type == "unsubscribe":
            task = self.following.pop(message.job_id, None)
            if task is not None:
                task.cancel()
        elif message.job_id and message.type == "cancel":
            await self._cancel(message.job_id)
        else:
            await self.outbox.put(
                _ws_error(
                    400,
                    "Unknown message",
                    f"unknown message type '{message.type}' or missing job_id",
                    request_id=message.request_id,
                )
            )

    def _follow(self, job_id: str, after: int) -> None:
        if job_id not in self.following:
            self.following[job_id] = asyncio.create_task(self._forward(job_id, after))

    async def _forward(self, job_id: str, after: int) -> None:
        try:
            subscription = await self.ctx.manager.events.subscribe(job_id, after)
        except KeyError:
            await self.outbox.put(
                _ws_error(404, "Unknown job", f"no job '{job_id}'", job_id=job_id)
            )
            return
        except BackendUnavailableError as exc:
            self.following.pop(job_id, None)
            await self.outbox.put(_ws_error(503, "Unavailable", str(exc), job_id=job_id))
            return
        while not subscription.done:
            event = await subscription.next(self.ctx.config.sse_heartbeat_s)
            if event is not None:
                await self.outbox.put(
                    {"type": "event", "job_id": job_id, "event": msgspec.to_builtins(event)}
                )
        self.following.pop(job_id, None)

    async def _cancel(self, job_id: str) -> None:
        try:
            record = await self.ctx.manager.cancel(job_id)
        except BackendUnavailableError as exc:
            await self.outbox.put(_ws_error(503, "Unavailable", str(exc), job_id=job_id))
            return
        if record is None:
            await self.outbox.put(
                _ws_error(404, "Unknown job", f"no job '{job_id}'", job_id=job_id)
            )
        else:
            await self.outbox.put({"type": "cancelled", "job_id": job_id, "status": record.status})

    async def _invoke(self, message: _WsMessage, payload: dict[str, Any]) -> None:
        body = {k: v for k, v in payload.items() if k not in ("type", "request_id")}
        request_id = message.request_id
        try:
            check_parameters(body.get("parameters"), self.socket.app.state[STATE_KEY])
        except ProblemDetailsException as exc:
            extra = exc.extra if isinstance(exc.extra, dict) else {}
            await self.outbox.put(
                _ws_error(422, "Invalid request", exc.detail, request_id=request_id, **extra)
            )
            return
        try:
            request = self.ctx.invoke_request_model.model_validate(body)
        except pydantic.ValidationError as exc:
            fields = [
                {"field": ".".join(map(str, e["loc"])) or "body", "message": e["msg"]}
                for e in exc.errors()
            ]
            detail = "invalid field(s): " + ", ".join(f["field"] for f in fields)
            await self.outbox.put(
                _ws_error(422, "Invalid request", detail, request_id=request_id, errors=fields)
            )
            return
        override = request.capture_override  # type: ignore[attr-defined]
        if override is not None and self.ctx.config.capture_override == "deny":
            await self.outbox.put(
                _ws_error(
                    403,
                    "Capture override not allowed",
                    "ZENML_SERVING_CAPTURE_OVERRIDE=deny",
                    request_id=request_id,
                )
            )
            return
        invocation = invocation_from_request(
            request, mode="stream", capture_plan=self.ctx.capture_plan
        )
        try:
            record = await self.ctx.manager.submit(invocation)
        except OverloadedError as exc:
            await self.outbox.put(
                _ws_error(
                    429,
                    "Too many requests",
                    f"retry in {exc.retry_after_s} s",
                    request_id=request_id,
                    retry_after_s=exc.retry_after_s,
                )
            )
            return
        except (ShuttingDownError, BackendUnavailableError) as exc:
            await self.outbox.put(_ws_error(503, "Unavailable", str(exc), request_id=request_id))
            return
        await self.outbox.put(
            {"type": "accepted", "request_id": request_id, "job_id": record.job_id}
        )
        self._follow(record.job_id, 0)


def _ws_error(status: int, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "error",
        "status": status,
        "title": title,
        "detail": detail,
        **{k: v for k, v in extra.items() if v is not None},
    }
