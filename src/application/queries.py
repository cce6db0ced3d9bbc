"""Read models: a waiting with its rank, a store's list, the public store view, a request's status."""

from __future__ import annotations

from application.access import Actor, Role
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
from domain.errors import NotFound
from domain.waiting import Waiting, WaitingStatus
from domain.waiting_list import ranks


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

    async def store_waitings(self, actor: Actor, store_id: int, status: WaitingStatus | None) -> View:
        actor.require_staff(store_id)
        async with self._uow() as uow:
            store = await existing_store(uow, store_id)
            day = store.business_date(self._clock.now())
            waitings = await uow.waitings.of_store(store_id, day, status)
            queue = (
                waitings
                if status is WaitingStatus.WAITING
                else await uow.waitings.of_store(store_id, day, WaitingStatus.WAITING)
            )
        rank_of = ranks(queue)
        return {"items": [waiting_view(w, rank_of.get(w.id or 0), store) for w in waitings]}

    async def store_snapshot(self, actor: Actor, store_id: int) -> View:
        """What a store's live stream starts from: the store and its active waitings."""
        actor.require_staff(store_id)
        return await self.active_list(store_id)

    async def active_list(self, store_id: int) -> View:
        """The store and its WAITING and CALLED waitings, ranked; in one read (no access check)."""
        async with self._uow() as uow:
            store = await existing_store(uow, store_id)
            waitings = await uow.waitings.of_store(store_id, store.business_date(self._clock.now()))
        rank_of = ranks([w for w in waitings if w.status is WaitingStatus.WAITING])
        active = (WaitingStatus.WAITING, WaitingStatus.CALLED)
        items = [waiting_view(w, rank_of.get(w.id or 0), store) for w in waitings if w.status in active]
        return {"store": store_view(store), "items": items}

    async def public_store(self, store_id: int) -> View:
        async with self._uow() as uow:
            store = await existing_store(uow, store_id)
            count = await uow.waitings.count_waiting(store_id, store.business_date(self._clock.now()))
        return public_store_view(store, count)

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
    rank = None
    if waiting.status is WaitingStatus.WAITING:
        rank = 1 + await uow.waitings.count_waiting(
            waiting.store_id, waiting.business_date, below=waiting.number
        )
    return waiting_view(waiting, rank, store)
