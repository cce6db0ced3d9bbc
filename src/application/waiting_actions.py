"""Moving a waiting along: call, seat, no-show, cancel (by the store, the customer or the guest)."""

from __future__ import annotations

from dataclasses import dataclass

from application.access import Actor, Role
from application.announcements import Announcer
from application.ports import Clock, ConcurrencyConflict, UnitOfWork, UnitOfWorkFactory
from application.views import View, for_guest, waiting_view
from domain.errors import NotFound
from domain.store import Store
from domain.waiting import Waiting, WaitingStatus


@dataclass(frozen=True)
class Target:
    """Which waiting, named the way its caller knows it."""

    waiting_id: int | None = None
    store_id: int | None = None
    status_token: str | None = None


class MoveWaiting:
    """Apply one transition; a concurrent change of the same waiting makes us re-read and decide again."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, announcer: Announcer) -> None:
        self._uow, self._clock, self._announcer = uow, clock, announcer

    async def by_store(self, actor: Actor, store_id: int, waiting_id: int, action: str) -> View:
        actor.require_staff(store_id)
        return await self._move(actor, Target(waiting_id, store_id=store_id), action)

    async def by_customer(self, actor: Actor, waiting_id: int) -> View:
        actor.require_role(Role.CUSTOMER)
        return await self._move(actor, Target(waiting_id), "cancel")

    async def by_guest(self, status_token: str) -> View:
        return for_guest(await self._move(None, Target(status_token=status_token), "cancel"))

    async def _move(self, actor: Actor | None, target: Target, action: str) -> View:
        for _ in range(3):
            try:
                store, waiting, was = await self._apply(actor, target, action)
                break
            except ConcurrencyConflict:
                continue
        else:
            raise ConcurrencyConflict("the waiting kept changing; try again")
        await self._announcer.moved(store, waiting, action, was)
        return waiting_view(waiting)

    async def _apply(
        self, actor: Actor | None, target: Target, action: str
    ) -> tuple[Store, Waiting, WaitingStatus]:
        async with self._uow() as uow:
            waiting = await _find(uow, actor, target)
            store = await uow.stores.get(waiting.store_id)
            assert store is not None
            was = waiting.status
            getattr(waiting, "mark_no_show" if action == "no_show" else action)(self._clock.now())
            await uow.waitings.save(waiting, was)
            await uow.commit()
        return store, waiting, was


async def _find(uow: UnitOfWork, actor: Actor | None, target: Target) -> Waiting:
    if target.status_token is not None:
        waiting = await uow.waitings.by_status_token(target.status_token)
    else:
        assert target.waiting_id is not None
        waiting = await uow.waitings.get(target.waiting_id)
    if waiting is None or (target.store_id is not None and waiting.store_id != target.store_id):
        raise NotFound("waiting not found")
    if actor is not None:
        actor.require_sight(waiting)
    return waiting
