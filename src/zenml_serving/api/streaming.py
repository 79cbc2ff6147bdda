"""Job event streaming: Server-Sent Events for one job, and a WebSocket for many.

SSE (`GET /stream/{job_id}`): each event carries `id:` (its sequence number in the job), so a
client that reconnects with `Last-Event-ID` (or `?after=N`) gets exactly what it missed, then
the live events; a named `heartbeat` event (no id) goes out every ZENML_SERVING_SSE_HEARTBEAT
seconds while the job is quiet; the stream ends after the job's final event.

A stream ends as soon as the client has seen the job's final event: at once for a client
whose `Last-Event-ID` is at or past the end of a finished job.

WebSocket (`/stream`): JSON messages in both directions; see `WS_PROTOCOL` below. A socket
whose `Origin` is foreign is closed with 4403 (`security.socket_origin_refusal`); one socket
follows at most `MAX_FOLLOWED_PER_SOCKET` jobs, and a subscribe that cannot be followed is
answered with an error every time, never remembered. When the service drains, every socket
gets a `shutting-down` error for each job it follows and is closed with 1001: granian drops
WebSocket connections as soon as it is told to stop (it waits only for HTTP requests), so this
must happen at the signal, not at the end of the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import msgspec
import pydantic
import structlog
from litestar import WebSocket, get, websocket
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath, HeaderParameter, QueryParameter
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.response import ServerSentEvent, ServerSentEventMessage

from zenml_serving.api.context import AppContext
from zenml_serving.api.errors import BACKEND_UNAVAILABLE_DETAIL, problem
from zenml_serving.api.request_limits import STATE_KEY, check_body
from zenml_serving.api.responses import DocumentedOperation, problem_responses
from zenml_serving.api.security import (
    WS_CLOSE_FORBIDDEN_ORIGIN,
    accepted_subprotocol,
    refuse_socket,
    socket_origin_refusal,
)
from zenml_serving.api.stream_limits import STREAM_ROUTE
from zenml_serving.execution.backend import BackendUnavailableError, Subscription
from zenml_serving.execution.invocation import invocation_from_request
from zenml_serving.execution.manager import ShuttingDownError
from zenml_serving.execution.slots import OverloadedError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from zenml_serving.execution.records import JobEvent

__all__ = [
    "MAX_FOLLOWED_PER_SOCKET",
    "WS_PROTOCOL",
    "OpenSockets",
    "job_event_stream",
    "stream_job",
    "stream_socket",
]

_RETRY_MS = 2000
_encoder = msgspec.json.Encoder()
_log = structlog.stdlib.get_logger(__name__)
MAX_FOLLOWED_PER_SOCKET = 100
"""Jobs one WebSocket follows at once; a subscribe beyond is answered 429."""
WS_CLOSE_UNSUPPORTED = 1003
WS_CLOSE_TOO_BIG = 1009
WS_CLOSE_GOING_AWAY = 1001

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
  a field of the wrong type (`after` < 0, a `request_id` that is not a string) is a 422 error
  naming it; a subscribe to an unknown job a 404 error, every time; more than 100 followed
  jobs a 429 error
close codes: 1003 a frame that is not a JSON object; 1009 a message over the size limit or
             nested too deep to decode; 1001 the service is shutting down (after a
             `shutting-down` error per followed job); 1013 / 4429 too many open streams
             (all / this client); 4401 no or a wrong key; 4403 a foreign `Origin`.
"""


class _WsMessage(msgspec.Struct, forbid_unknown_fields=False):
    type: str
    job_id: str | None = None
    after: Annotated[int, msgspec.Meta(ge=0)] = 0
    request_id: str | None = None


_FIELD_PATH = re.compile(r"at `\$\.?([^`]*)`")


def _message_error(exc: msgspec.ValidationError, payload: dict[str, Any]) -> dict[str, Any]:
    """A 422 error frame naming the field of a message that has one of the wrong type."""
    match = _FIELD_PATH.search(str(exc))
    field = match.group(1) if match and match.group(1) else "message"
    request_id = payload.get("request_id")
    return _ws_error(
        422,
        "Invalid message",
        f"invalid field: {field}: {str(exc).split(' - at ')[0]}",
        errors=[{"field": field, "message": str(exc)}],
        request_id=request_id if isinstance(request_id, str) else None,
    )


async def _subscribe(ctx: AppContext, job_id: str, after: int) -> Subscription:
    try:
        return await ctx.manager.events.subscribe(job_id, after)
    except KeyError:
        raise problem(
            404, "not-found", "Unknown job", f"no job '{job_id}' (finished jobs expire)"
        ) from None


async def _job_finished(ctx: AppContext, job_id: str) -> bool:
    """Whether the job is over (its final event is then stored: the event log is written
    before the record); a job that expired meanwhile is over too."""
    try:
        record = await ctx.manager.jobs.get(job_id)
    except BackendUnavailableError:
        return False  # cannot tell: keep the stream open, ask again at the next heartbeat
    return record is None or record.finished


async def _job_events(
    ctx: AppContext, job_id: str, subscription: Subscription
) -> AsyncIterator[JobEvent | None]:
    """The job's events after the subscription's cursor, None for a heartbeat, ending with
    the final event, or at once when the job is over and nothing is left after the cursor
    (a client that reconnects with `Last-Event-ID` at or past the end)."""
    heartbeat = ctx.config.sse_heartbeat_s
    finished = await _job_finished(ctx, job_id)
    while not subscription.done:
        event = await subscription.next(0.0 if finished else heartbeat)
        if event is not None:
            yield event
        elif finished:
            return
        else:
            finished = await _job_finished(ctx, job_id)
            if not finished:
                yield None


async def job_event_stream(ctx: AppContext, job_id: str, after: int) -> ServerSentEvent:
    """An SSE response of `job_id`'s events after id `after`, live until its final event."""
    subscription = await _subscribe(ctx, job_id, after)

    async def messages() -> Any:
        yield ServerSentEventMessage(data=None, comment=f"job {job_id}", retry=_RETRY_MS)
        async for event in _job_events(ctx, job_id, subscription):
            if event is None:
                yield ServerSentEventMessage(
                    event="heartbeat", data=_encoder.encode({"at": time.time()}).decode()
                )
            else:
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
    responses=problem_responses(400, 401, 404, 422, 429, 503),
    operation_class=DocumentedOperation,
    opt={STREAM_ROUTE: True},
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


class OpenSockets:
    """The open WebSocket sessions of this process, so that draining can say goodbye."""

    def __init__(self) -> None:
        self._sessions: set[_SocketSession] = set()
        self.draining = False

    def add(self, session: _SocketSession) -> None:
        self._sessions.add(session)

    def discard(self, session: _SocketSession) -> None:
        self._sessions.discard(session)

    def going_away(self) -> None:
        """Draining started: every socket gets its goodbye now (idempotent)."""
        self.draining = True
        for session in list(self._sessions):
            session.going_away()

    async def farewell(self) -> None:
        """Say goodbye on every socket and wait until each has been closed."""
        self.going_away()
        goodbyes = [s.goodbye for s in list(self._sessions) if s.goodbye is not None]
        if goodbyes:
            await asyncio.wait(goodbyes)


@websocket("/stream", opt={STREAM_ROUTE: True})
async def stream_socket(socket: WebSocket[Any, Any, Any], ctx: NamedDependency[AppContext]) -> None:
    """Submit, subscribe to and cancel jobs over one socket (protocol: WS_PROTOCOL)."""
    refusal = socket_origin_refusal(socket.scope, ctx.config)
    if refusal is not None:
        await refuse_socket(
            socket.scope, socket.receive, socket.send, WS_CLOSE_FORBIDDEN_ORIGIN, refusal
        )
        return
    if ctx.sockets.draining:
        await refuse_socket(
            socket.scope, socket.receive, socket.send, WS_CLOSE_GOING_AWAY, "shutting down"
        )
        return
    await socket.accept(subprotocols=accepted_subprotocol(socket.scope))
    await _SocketSession(socket, ctx).run()


class _SocketSession:
    """One WebSocket connection: a receiver, a sender and a follower task per subscribed job."""

    def __init__(self, socket: WebSocket[Any, Any, Any], ctx: AppContext) -> None:
        self.socket = socket
        self.ctx = ctx
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
        self.following: dict[str, asyncio.Task[None]] = {}
        self.goodbye: asyncio.Task[None] | None = None
        self._closed = False

    async def run(self) -> None:
        self.ctx.sockets.add(self)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._send_loop)
                await self._receive_loop()
                group.cancel_scope.cancel()
        except WebSocketDisconnect:
            pass
        finally:
            self.ctx.sockets.discard(self)
            for task in self.following.values():
                task.cancel()
            if self.goodbye is not None:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await self.goodbye
            await self._close(1000, "")

    async def _close(self, code: int, reason: str) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(Exception):
                await self.socket.close(code=code, reason=reason)

    def going_away(self) -> None:
        """The service drains: say so for every followed job, then close with 1001."""
        if self.goodbye is None:
            self.goodbye = asyncio.ensure_future(self._say_goodbye())

    async def _say_goodbye(self) -> None:
        for job_id in list(self.following):
            with contextlib.suppress(Exception):
                await self.socket.send_json(
                    _ws_error(
                        503,
                        "Service is shutting down",
                        "this instance is draining: the job runs on here for up to "
                        "ZENML_SERVING_SHUTDOWN_GRACE; with a shared job backend, "
                        f"GET /jobs/{job_id} on another instance says how it ended",
                        job_id=job_id,
                    )
                )
        await self._close(WS_CLOSE_GOING_AWAY, "the service is shutting down")

    async def _send_loop(self) -> None:
        heartbeat = self.ctx.config.sse_heartbeat_s
        while True:
            try:
                message = await asyncio.wait_for(self.outbox.get(), heartbeat)
            except asyncio.TimeoutError:
                message = {"type": "ping", "at": time.time()}
            if self._closed:
                return
            await self.socket.send_json(message)

    async def _receive_loop(self) -> None:
        while True:
            try:
                raw = await self.socket.receive_data(mode="text")
            except WebSocketDisconnect:
                return
            if self._closed:
                return
            if len(raw) > self.ctx.config.max_request_bytes:
                await self._close(
                    WS_CLOSE_TOO_BIG,
                    f"message over {self.ctx.config.max_request_bytes} bytes "
                    "(ZENML_SERVING_MAX_REQUEST_SIZE)",
                )
                return
            try:
                payload = msgspec.json.decode(raw)
            except RecursionError:
                await self._close(WS_CLOSE_TOO_BIG, "message nested too deep to decode")
                return
            except msgspec.DecodeError:
                payload = None
            if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
                await self._close(WS_CLOSE_UNSUPPORTED, "expected a JSON object with a 'type'")
                return
            try:
                message = msgspec.convert(payload, _WsMessage)
            except msgspec.ValidationError as exc:
                await self.outbox.put(_message_error(exc, payload))
                continue
            await self._handle(message, payload)

    async def _handle(self, message: _WsMessage, payload: dict[str, Any]) -> None:
        if message.type == "ping":
            await self.outbox.put({"type": "pong"})
        elif message.type == "invoke":
            await self._invoke(message, payload)
        elif message.job_id and message.type == "subscribe":
            await self._follow(message.job_id, message.after)
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
                    f"unknown message type '{message.type[:40]}' or missing job_id",
                    request_id=message.request_id,
                )
            )

    async def _follow(self, job_id: str, after: int) -> None:
        """Follow `job_id` from `after`, or say why not (nothing is kept for a refusal)."""
        if job_id in self.following:
            return
        if len(self.following) >= MAX_FOLLOWED_PER_SOCKET:
            await self.outbox.put(
                _ws_error(
                    429,
                    "Too many subscriptions",
                    f"one socket follows at most {MAX_FOLLOWED_PER_SOCKET} jobs at once; "
                    "unsubscribe from one first",
                    job_id=job_id[:100],
                )
            )
            return
        try:
            subscription = await self.ctx.manager.events.subscribe(job_id, after)
        except KeyError:
            await self.outbox.put(
                _ws_error(
                    404, "Unknown job", "no such job (finished jobs expire)", job_id=job_id[:100]
                )
            )
            return
        except BackendUnavailableError:
            await self.outbox.put(
                _ws_error(503, "Unavailable", BACKEND_UNAVAILABLE_DETAIL, job_id=job_id)
            )
            return
        self.following[job_id] = asyncio.create_task(self._forward(job_id, subscription))

    async def _forward(self, job_id: str, subscription: Subscription) -> None:
        async for event in _job_events(self.ctx, job_id, subscription):
            if event is not None:
                await self.outbox.put(
                    {"type": "event", "job_id": job_id, "event": msgspec.to_builtins(event)}
                )
        self.following.pop(job_id, None)

    async def _cancel(self, job_id: str) -> None:
        try:
            record = await self.ctx.manager.cancel(job_id)
        except BackendUnavailableError:
            await self.outbox.put(
                _ws_error(503, "Unavailable", BACKEND_UNAVAILABLE_DETAIL, job_id=job_id)
            )
            return
        if record is None:
            await self.outbox.put(
                _ws_error(
                    404, "Unknown job", "no such job (finished jobs expire)", job_id=job_id[:100]
                )
            )
        else:
            await self.outbox.put({"type": "cancelled", "job_id": job_id, "status": record.status})

    async def _invoke(self, message: _WsMessage, payload: dict[str, Any]) -> None:
        body = {k: v for k, v in payload.items() if k not in ("type", "request_id")}
        request_id = message.request_id
        try:
            check_body(body, self.socket.app.state[STATE_KEY])
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
        except ShuttingDownError:
            await self.outbox.put(
                _ws_error(
                    503,
                    "Service is shutting down",
                    "this instance is draining; retry against another instance",
                    request_id=request_id,
                )
            )
            return
        except BackendUnavailableError:
            await self.outbox.put(
                _ws_error(503, "Unavailable", BACKEND_UNAVAILABLE_DETAIL, request_id=request_id)
            )
            return
        await self.outbox.put(
            {"type": "accepted", "request_id": request_id, "job_id": record.job_id}
        )
        await self._follow(record.job_id, 0)


def _ws_error(status: int, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "error",
        "status": status,
        "title": title,
        "detail": detail,
        **{k: v for k, v in extra.items() if v is not None},
    }
