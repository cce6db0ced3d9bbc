"""Read models: a waiting with its rank, a store's list, the public store view, a request's status."""

from __future__ import annotations

import base64

from application.access import Actor, Role
from application.pace import history_minutes
from application.ports import Clock, RequestStatusStore, UnitOfWork, UnitOfWorkFactory
from application.requests import RequestState, RequestStatus
from application.stores import existing_store
from application.views import (
    View,
    for_customer,
    for_guest,
    public_store_view,
    request_view,
    store_view,
    waiting_view,
)
from domain.errors import NotFound, ValidationError
from domain.waiting import Waiting, WaitingStatus
from domain.waiting_list import ranks

PAGE_SIZE, MAX_PAGE_SIZE = 100, 500


def _cursor(place: int) -> str:
    """Opaque to clients: where the next page starts."""
    return base64.urlsafe_b64encode(f"n:{place}".encode()).decode().rstrip("=")


def _place_of(cursor: str) -> int:
    try:
        decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, number = decoded.split(":")
        if prefix != "n" or not number.isdecimal() or len(number) > 9:
            raise ValueError(decoded)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError.of("after", "not a cursor this list gave out") from None
    return int(number)


class Queries:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, statuses: RequestStatusStore) -> None:
        self._uow, self._clock, self._statuses = uow, clock, statuses

    async def waiting(self, actor: Actor, waiting_id: int) -> View:
        async with self._uow() as uow:
            waiting = await uow.waitings.get(waiting_id)
            if waiting is None:
                raise NotFound("waiting not found")
            actor.require_sight(waiting)
            view = await _ranked_view(uow, waiting)
        return view if actor.staffs(waiting.store_id) else for_customer(view)

    async def guest_waiting(self, status_token: str) -> View:
        async with self._uow() as uow:
            waiting = await uow.waitings.by_status_token(status_token)
            if waiting is None:
                raise NotFound("waiting not found")
            return for_guest(await _ranked_view(uow, waiting))

    async def guest_waiting_id(self, status_token: str) -> int:
        view = await self.guest_waiting(status_token)
        return int(view["id"])

    async def store_waitings(
        self,
        actor: Actor,
        store_id: int,
        status: WaitingStatus | None,
        limit: int = PAGE_SIZE,
        after: str | None = None,
    ) -> View:
        """A page of the day's waitings in queue order, and the cursor of the next page (or None)."""
        actor.require_staff(store_id)
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValidationError.of("limit", f"must be between 1 and {MAX_PAGE_SIZE}")
        above = None if after is None else _place_of(after)
        async with self._uow() as uow:
            store = await existing_store(uow, store_id)
            day = store.business_date(self._clock.now())
            page = await uow.waitings.of_store(store_id, day, status, after=above, limit=limit + 1)
            first = next((w for w in page if w.status is WaitingStatus.WAITING), None)
            ahead = 0 if first is None else await uow.waitings.count_waiting(store_id, day, below=first.place)
            history = await history_minutes(uow, store_id, day)
        more, page = len(page) > limit, page[:limit]
        items = []
        for waiting in page:
            rank = None
            if waiting.status is WaitingStatus.WAITING:
                ahead += 1
                rank = ahead
            items.append(waiting_view(waiting, rank, store, history))
        return {"items": items, "next": _cursor(page[-1].place) if more else None}

    async def store_snapshot(self, actor: Actor, store_id: int) -> View:
        """What a store's live stream starts from: the store and its active waitings."""
        actor.require_staff(store_id)
        return await self.active_list(store_id)

    async def active_list(self, store_id: int) -> View:
        """The store and its WAITING and CALLED waitings, ranked; in one read (no access check)."""
        async with self._uow() as uow:
            store = await existing_store(uow, store_id)
            day = store.business_date(self._clock.now())
            waitings = await uow.waitings.of_store(store_id, day)
            history = await history_minutes(uow, store_id, day)
        rank_of = ranks([w for w in waitings if w.status is WaitingStatus.WAITING])
        active = (WaitingStatus.WAITING, WaitingStatus.CALLED)
        items = [
            waiting_view(w, rank_of.get(w.id or 0), store, history) for w in waitings if w.status in active
        ]
        return {"store": store_view(store, self._clock.now()), "items": items}

    async def public_store(self, store_id: int) -> View:
        async with self._uow() as uow:
            store = await existing_store(uow, store_id)
            now = self._clock.now()
            day = store.business_date(now)
            count = await uow.waitings.count_waiting(store_id, day)
            history = await history_minutes(uow, store_id, day)
        return public_store_view(store, count, now, history)

    async def request(self, actor: Actor, trace_id: str) -> View:
        status = await self.request_status(actor, trace_id)
        waiting = None
        if status.state is RequestState.REGISTERED and status.waiting_id is not None:
            waiting = await self.waiting_for_request(actor, status)
        return request_view(status, waiting)

    async def request_status(self, actor: Actor, trace_id: str) -> RequestStatus:
        status = await self._statuses.get(trace_id)
        if status is None or not status.decided:
            async with self._uow() as uow:
                status = (await uow.requests.decided([trace_id])).get(trace_id, status)
        if status is None or not _may_follow(actor, status):
            raise NotFound("request not found")
        return status

    async def waiting_for_request(self, actor: Actor, status: RequestStatus) -> View | None:
        assert status.waiting_id is not None
        async with self._uow() as uow:
            waiting = await uow.waitings.get(status.waiting_id)
            if waiting is None:
                return None
            view = await _ranked_view(uow, waiting)
        return view if actor.staffs(waiting.store_id) else for_customer(view)


def _may_follow(actor: Actor, status: RequestStatus) -> bool:
    own = actor.role is Role.CUSTOMER and status.user_id == actor.subject
    return own or actor.staffs(status.store_id)


async def _ranked_view(uow: UnitOfWork, waiting: Waiting) -> View:
    store = await existing_store(uow, waiting.store_id)
    rank = history = None
    if waiting.status is WaitingStatus.WAITING:
        rank = 1 + await uow.waitings.count_waiting(
            waiting.store_id, waiting.business_date, below=waiting.place
        )
        history = await history_minutes(uow, waiting.store_id, waiting.business_date)
    return waiting_view(waiting, rank, store, history)
