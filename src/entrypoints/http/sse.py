"""Server-sent events: the application's events as SSE messages, with keep-alive comments."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import msgspec
from litestar.response import ServerSentEvent, ServerSentEventMessage

from application.ports import Event

_encoder = msgspec.json.Encoder()


async def _messages(events: AsyncIterator[Event], keepalive: float) -> AsyncIterator[ServerSentEventMessage]:
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
