"""Moving a waiting along: call, seat, no-show, cancel (by the store, the customer or the guest)."""

from __future__ import annotations

from dataclasses import dataclass

from application.access import Actor, Role
from application.announcements import Announcer
from application.pace import history_minutes
from application.ports import Clock, ConcurrencyConflict, UnitOfWork, UnitOfWorkFactory
from application.stores import existing_store
from application.views import View, for_customer, for_guest, waiting_view
from domain.errors import NotFound
from domain.store import Store
from domain.waiting import Canceller, Waiting, WaitingStatus
from domain.waiting_list import postpone


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

    async def postpone(self, actor: Actor, waiting_id: int, places: int) -> View:
        """The customer steps back `places` places in the queue (DOMAIN.md, "Queue order and postpone")."""
        actor.require_role(Role.CUSTOMER)
        return for_customer(await self._postpone(actor, Target(waiting_id), places))

    async def postpone_by_guest(self, status_token: str, places: int) -> View:
        return for_guest(await self._postpone(None, Target(status_token=status_token), places))

    async def _postpone(self, actor: Actor | None, target: Target, places: int) -> View:
        for _ in range(3):
            try:
                store, ranked, history = await self._step_back(actor, target, places)
                break
            except ConcurrencyConflict:
                continue
        else:
            raise ConcurrencyConflict("the queue kept changing; try again")
        await self._announcer.postponed(store, ranked, history)
        mover, rank = ranked[-1]
        return waiting_view(mover, rank, store, history)

    async def _step_back(
        self, actor: Actor | None, target: Target, places: int
    ) -> tuple[Store, list[tuple[Waiting, int]], float | None]:
        """The entries that moved with their new ranks (the mover last), and the day's pace."""
        async with self._uow() as uow:
            mover = await _find(uow, actor, target)
            store = await existing_store(uow, mover.store_id)
            day, waiting = mover.business_date, WaitingStatus.WAITING
            behind = []
            if mover.status is waiting:
                behind = await uow.waitings.of_store(store.id, day, waiting, after=mover.place, limit=places)
            rank = 1 + await uow.waitings.count_waiting(store.id, day, below=mover.place)
            was_at = {w.id: w.place for w in (mover, *behind)}
            passed = postpone(mover, behind, places, store.max_postpones)
            for moved in (*passed, mover):
                await uow.waitings.save(moved, waiting, was_at[moved.id])
            history = await history_minutes(uow, store.id, day)
            await uow.commit()
        # Each one passed moves up one; the mover goes behind them.
        return store, [*((w, rank + i) for i, w in enumerate(passed)), (mover, rank + len(passed))], history

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
            now = self._clock.now()
            if action == "cancel":
                staff = actor is not None and actor.staffs(waiting.store_id)
                waiting.cancel(now, Canceller.STORE if staff else Canceller.CUSTOMER)
            else:
                getattr(waiting, "mark_no_show" if action == "no_show" else action)(now)
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
