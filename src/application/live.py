"""Live streams: a snapshot (or what a reconnecting client missed), then changes as they happen."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

from application.access import Actor
from application.announcements import store_stream, waiting_stream
from application.ports import Event, Notifier, RequestStatusStore
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


def _unmasked(view: View) -> View:
    return view


class LiveUpdates:
    def __init__(self, notifier: Notifier, queries: Queries, statuses: RequestStatusStore) -> None:
        self._notifier, self._queries, self._statuses = notifier, queries, statuses

    async def waiting(self, actor: Actor, waiting_id: int, last_event_id: str | None) -> AsyncIterator[Event]:
        """Checks access at once (NotFound), so the stream itself never starts for a stranger."""
        first = await self._queries.waiting(actor, waiting_id)
        mask = _unmasked if "statusToken" in first else for_customer
        snapshot = partial(self._queries.waiting, actor, waiting_id)
        return self._follow(waiting_stream(waiting_id), last_event_id, snapshot, mask, ends=True)

    async def guest_waiting(self, status_token: str, last_event_id: str | None) -> AsyncIterator[Event]:
        waiting_id = await self._queries.guest_waiting_id(status_token)
        snapshot = partial(self._queries.guest_waiting, status_token)
        return self._follow(waiting_stream(waiting_id), last_event_id, snapshot, for_guest, ends=True)

    async def store(self, actor: Actor, store_id: int, last_event_id: str | None) -> AsyncIterator[Event]:
        await self._queries.store_snapshot(actor, store_id)
        snapshot = partial(self._queries.store_snapshot, actor, store_id)
        return self._follow(store_stream(store_id), last_event_id, snapshot, _unmasked, ends=False)

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
        async with self._notifier.subscribe(stream, last_event_id) as subscription:
            if subscription.missed is None:
                view = await snapshot()
                yield Event(id=subscription.head, type="snapshot", data=view)
                if ends and WaitingStatus(view["status"]).terminal:
                    return
            for event in subscription.missed or []:
                yield Event(event.id, event.type, mask(dict(event.data)))
                if ends and event.type in TERMINAL_EVENTS:
                    return
            async for event in subscription:
                yield Event(event.id, event.type, mask(dict(event.data)))
                if ends and event.type in TERMINAL_EVENTS:
                    return
