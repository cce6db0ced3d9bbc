"""Live streams: a snapshot (or what a reconnecting client missed), then changes as they happen."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from functools import partial
from typing import Generic, TypeVar

from application.access import Actor
from application.announcements import store_stream, waiting_stream
from application.ports import Event, Notifier, RequestStatusStore, Subscription
from application.queries import Queries
from application.requests import RequestState
from application.views import View, for_customer, for_guest, request_view
from domain.waiting import WaitingStatus

# A waiting's stream ends with these: nothing can follow them.
TERMINAL_EVENTS = frozenset({"seated", "cancelled", "no_show"})
# The one event a request's stream sends, by how the request ended.
OUTCOME_EVENTS = {
    RequestState.REGISTERED: "registered",
    RequestState.REJECTED: "rejected",
    RequestState.FAILED: "failed",
}
Mask = Callable[[View], View]
K = TypeVar("K")


def _unmasked(view: View) -> View:
    return view


class LiveUpdates:
    def __init__(self, notifier: Notifier, queries: Queries, statuses: RequestStatusStore) -> None:
        self._notifier, self._queries, self._statuses = notifier, queries, statuses
        self._store_lists: SharedReads[int] = SharedReads()

    async def waiting(self, actor: Actor, waiting_id: int, last_event_id: str | None) -> AsyncIterator[Event]:
        """Checks access at once (NotFound), so the stream itself never starts for a stranger."""
        first = await self._queries.waiting(actor, waiting_id)
        mask = _unmasked if "statusToken" in first else for_customer
        snapshot = partial(self._queries.waiting, actor, waiting_id)
        return await self._follow(waiting_stream(waiting_id), last_event_id, snapshot, mask, ends=True)

    async def guest_waiting(self, status_token: str, last_event_id: str | None) -> AsyncIterator[Event]:
        waiting_id = await self._queries.guest_waiting_id(status_token)
        snapshot = partial(self._queries.guest_waiting, status_token)
        return await self._follow(waiting_stream(waiting_id), last_event_id, snapshot, for_guest, ends=True)

    async def store(self, actor: Actor, store_id: int, last_event_id: str | None) -> AsyncIterator[Event]:
        actor.require_staff(store_id)
        # A crowd of staff screens opening at once shares a read of the list.
        snapshot = partial(self._store_lists.read, store_id, partial(self._queries.active_list, store_id))
        return await self._follow(store_stream(store_id), last_event_id, snapshot, _unmasked, ends=False)

    async def request(self, actor: Actor, trace_id: str) -> AsyncIterator[Event]:
        await self._queries.request_status(actor, trace_id)
        return self._decision(actor, trace_id)

    async def _decision(self, actor: Actor, trace_id: str) -> AsyncIterator[Event]:
        status = await self._queries.request_status(actor, trace_id)
        while not status.ended:
            await self._statuses.wait_decided(trace_id, within=30)
            status = await self._queries.request_status(actor, trace_id)
        waiting = await self._queries.waiting_for_request(actor, status) if status.waiting_id else None
        yield Event(id=trace_id, type=OUTCOME_EVENTS[status.state], data=request_view(status, waiting))

    async def _follow(
        self,
        stream: str,
        last_event_id: str | None,
        snapshot: Callable[[], Awaitable[View]],
        mask: Mask,
        *,
        ends: bool,
    ) -> AsyncIterator[Event]:
        """Subscribe and read where the client starts (a snapshot, or what it missed) now, before
        any answer is sent: a database or Redis that fails here is a 503, not a broken stream."""
        exits = AsyncExitStack()
        try:
            subscription = await exits.enter_async_context(self._notifier.subscribe(stream, last_event_id))
            if subscription.missed is None:
                start = [Event(id=subscription.head, type="snapshot", data=await snapshot())]
            else:
                start = [Event(event.id, event.type, mask(dict(event.data))) for event in subscription.missed]
        except BaseException:
            await exits.aclose()
            raise
        return self._events(exits, subscription, start, mask, ends=ends)

    async def _events(
        self, exits: AsyncExitStack, subscription: Subscription, start: list[Event], mask: Mask, *, ends: bool
    ) -> AsyncIterator[Event]:
        async with exits:
            for event in start:
                yield event
                if ends and _final(event):
                    return
            async for event in subscription:
                yield Event(event.id, event.type, mask(dict(event.data)))
                if ends and event.type in TERMINAL_EVENTS:
                    return


class SharedReads(Generic[K]):
    """Callers asking for a key's read get the next read of it that starts after they asked:
    whoever comes while one runs waits for the one after, which they all share. A crowd costs
    two reads, and nobody gets a read that began before they asked (they subscribed first, so a
    read from before could miss an event they will not be sent)."""

    def __init__(self) -> None:
        self._next: dict[K, asyncio.Future[View]] = {}
        self._running: dict[K, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def read(self, key: K, read: Callable[[], Awaitable[View]]) -> View:
        shared = self._next.get(key)
        if shared is None:
            shared = self._next[key] = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(self._run(key, read, shared))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(shared)

    async def _run(self, key: K, read: Callable[[], Awaitable[View]], shared: asyncio.Future[View]) -> None:
        while (running := self._running.get(key)) is not None:
            await asyncio.wait({running})
        if self._next.get(key) is shared:
            del self._next[key]  # from here on, newcomers wait for the read after this one
        task = asyncio.current_task()
        assert task is not None
        self._running[key] = task
        try:
            shared.set_result(await read())
        except Exception as error:
            shared.set_exception(error)
        finally:
            del self._running[key]
            if not shared.done():
                shared.cancel()


def _final(event: Event) -> bool:
    if event.type == "snapshot":
        return WaitingStatus(event.data["status"]).terminal
    return event.type in TERMINAL_EVENTS
