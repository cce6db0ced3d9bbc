"""Server-sent events: the application's events as SSE messages, with keep-alive comments, a
reconnection hint, and a cap on the streams one process keeps open."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import msgspec
from litestar.enums import ScopeType
from litestar.exceptions import ServiceUnavailableException
from litestar.response import ServerSentEvent, ServerSentEventMessage
from litestar.types import ASGIApp, Receive, Scope, Send

from application.ports import Event

log = logging.getLogger(__name__)
_encoder = msgspec.json.Encoder()
# How long a client waits before it reconnects (with its Last-Event-ID) after losing the stream.
RECONNECT_AFTER_MS = 3000


async def _messages(events: AsyncIterator[Event], keepalive: float) -> AsyncIterator[ServerSentEventMessage]:
    yield ServerSentEventMessage(data=None, retry=RECONNECT_AFTER_MS)
    pending = asyncio.ensure_future(anext(events))
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=keepalive)
            if not done:
                yield ServerSentEventMessage(comment="keep-alive", data=None)
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            except Exception as error:
                # Too late for an error answer: end the stream; the client reconnects (retry:) with
                # its Last-Event-ID and catches up.
                log.warning("live stream ended by %r", error)
                return
            data = _encoder.encode(dict(event.data)).decode()
            yield ServerSentEventMessage(data=data, event=event.type, id=event.id or None)
            pending = asyncio.ensure_future(anext(events))
    finally:
        pending.cancel()
        with contextlib.suppress(BaseException):
            await pending
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


def event_stream(events: AsyncIterator[Event], keepalive: float) -> ServerSentEvent:
    return ServerSentEvent(
        _messages(events, keepalive),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class StreamCap:
    """At most `most` event streams open in this process; past it, 503 with Retry-After: each open
    stream holds memory and a task, and a crowd of them must not starve registrations."""

    def __init__(self, most: int) -> None:
        self.most, self.open = most, 0

    def middleware(self, app: ASGIApp) -> ASGIApp:
        async def capped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP or not scope["path"].endswith("/events"):
                await app(scope, receive, send)
                return
            if self.open >= self.most:
                raise ServiceUnavailableException(
                    detail=f"this server keeps {self.most} live streams open at most; retry shortly",
                    headers={"Retry-After": "5"},
                )
            self.open += 1
            try:
                await app(scope, receive, send)
            finally:
                self.open -= 1

        return capped
