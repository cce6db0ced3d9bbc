"""Stores: creating them, and opening or closing their lists."""

from __future__ import annotations

from dataclasses import dataclass

from application.access import Actor, Role
from application.announcements import Announcer
from application.ports import UnitOfWork, UnitOfWorkFactory
from application.views import View, store_view
from domain.errors import StoreNotFound
from domain.store import DEFAULT_MAX_PARTY_SIZE, DEFAULT_TIME_ZONE, Store


@dataclass(frozen=True)
class NewStore:
    name: str
    time_zone: str = DEFAULT_TIME_ZONE
    max_party_size: int = DEFAULT_MAX_PARTY_SIZE
    max_queue_size: int | None = None
    avg_service_minutes: int | None = None
    waiting_open: bool = False


class CreateStore:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def __call__(self, actor: Actor, new: NewStore) -> View:
        actor.require_role(Role.ADMIN)
        store = Store(
            id=0,
            name=new.name,
            time_zone=new.time_zone,
            waiting_open=new.waiting_open,
            max_party_size=new.max_party_size,
            max_queue_size=new.max_queue_size,
            avg_service_minutes=new.avg_service_minutes,
        )
        async with self._uow() as uow:
            await uow.stores.add(store)
            await uow.commit()
        return store_view(store)


class SwitchWaiting:
    """Open or close a store's list; registrations already decided are not touched."""

    def __init__(self, uow: UnitOfWorkFactory, announcer: Announcer) -> None:
        self._uow, self._announcer = uow, announcer

    async def __call__(self, actor: Actor, store_id: int, *, open_: bool) -> View:
        actor.require_staff(store_id)
        async with self._uow() as uow:
            store = await existing_store(uow, store_id)
            if open_:
                store.open_waiting()
            else:
                store.close_waiting()
            await uow.stores.save(store)
            await uow.commit()
        await self._announcer.store_changed(store)
        return store_view(store)


async def existing_store(uow: UnitOfWork, store_id: int) -> Store:
    store = await uow.stores.get(store_id)
    if store is None:
        raise StoreNotFound(f"store {store_id} not found")
    return store
