"""In-process fan-out of live events, keeping recent history so reconnecting clients catch up."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from application.ports import Event

_CLOSED = Event(id="", type="", data={})
# Idle streams are looked for each time this many more events were published.
SWEEP_EVERY = 1000


@dataclass
class _Stream:
    history: deque[tuple[float, Event]] = field(default_factory=deque)
    forgotten: int = 0
    """The id of the newest event dropped from history: replay is possible only after it."""
    subscribers: set[asyncio.Queue[Event]] = field(default_factory=set)


@dataclass
class LocalSubscription:
    missed: list[Event] | None
    head: str
    _queue: asyncio.Queue[Event]

    async def __aiter__(self) -> AsyncIterator[Event]:
        while (event := await self._queue.get()) is not _CLOSED:
            yield event


class LocalNotifier:
    """Ids are one counter for all streams, so they grow within each stream.

    A stream keeps its last `keep_events` events, and at least those of the last `keep_seconds`.
    A subscriber that falls `max_backlog` events behind is cut off; it reconnects with its
    Last-Event-ID and catches up from history.
    """

    def __init__(
        self,
        keep_events: int = 100,
        keep_seconds: float = 600.0,
        max_backlog: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keep_events, self._keep_seconds = keep_events, keep_seconds
        self._max_backlog, self._clock = max_backlog, clock
        self._ids = itertools.count(1)
        self._last_id = 0
        self._streams: dict[str, _Stream] = {}
        self._forgotten_streams = 0

    async def publish(self, stream: str, event_type: str, data: Mapping[str, Any]) -> None:
        await self.publish_all([(stream, event_type, data)])

    async def publish_all(self, events: Sequence[tuple[str, str, Mapping[str, Any]]]) -> None:
        # A batch's thousand events, mostly to one stream: one clock reading, each stream trimmed
        # once, and no await between them.
        first, now = self._last_id, self._clock()
        touched: dict[str, _Stream] = {}
        for stream, event_type, data in events:
            state = touched.get(stream)
            if state is None:
                state = touched[stream] = self._stream(stream)
            self._last_id = next(self._ids)
            event = Event(str(self._last_id), event_type, data)
            state.history.append((now, event))
            if state.subscribers:
                self._deliver(state, event)
        for state in touched.values():
            self._trim(state)
        if self._last_id // SWEEP_EVERY > first // SWEEP_EVERY:
            self._sweep()

    def _deliver(self, state: _Stream, event: Event) -> None:
        for queue in list(state.subscribers):
            if queue.qsize() >= self._max_backlog:
                state.subscribers.discard(queue)
                queue.put_nowait(_CLOSED)
            else:
                queue.put_nowait(event)

    @asynccontextmanager
    async def subscribe(self, stream: str, last_event_id: str | None) -> AsyncIterator[LocalSubscription]:
        state = self._stream(stream)
        self._trim(state)
        queue: asyncio.Queue[Event] = asyncio.Queue()
        state.subscribers.add(queue)
        head = state.history[-1][1].id if state.history else "0"
        try:
            yield LocalSubscription(self._missed(state, last_event_id), head, queue)
        finally:
            state.subscribers.discard(queue)

    def _missed(self, state: _Stream, last_event_id: str | None) -> list[Event] | None:
        if last_event_id is None or not last_event_id.isdecimal():
            return None
        after = int(last_event_id)
        if after > self._last_id or after < state.forgotten:
            return None
        return [event for _, event in state.history if int(event.id) > after]

    def _stream(self, name: str) -> _Stream:
        if name not in self._streams:
            # It may have been swept: nothing before the newest forgotten event can be replayed.
            self._streams[name] = _Stream(forgotten=self._forgotten_streams)
        return self._streams[name]

    def _trim(self, state: _Stream) -> None:
        oldest_kept = self._clock() - self._keep_seconds
        while len(state.history) > self._keep_events and state.history[0][0] < oldest_kept:
            state.forgotten = int(state.history.popleft()[1].id)

    def _sweep(self) -> None:
        """Forget idle streams; a client coming back for one gets a fresh snapshot."""
        for name, state in list(self._streams.items()):
            self._trim(state)
            idle = not state.subscribers and (
                not state.history or state.history[-1][0] < self._clock() - self._keep_seconds
            )
            if idle:
                if state.history:
                    self._forgotten_streams = max(self._forgotten_streams, int(state.history[-1][1].id))
                del self._streams[name]
