"""Creating a store and moving a waiting: edges the mutation run (scripts/mutation) found untested."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from adapters.persistence.memory import MemoryUnitOfWork
from application.ports import ConcurrencyConflict, UnitOfWork
from application.stores import CreateStore, NewStore, existing_store
from domain.errors import NotFound, StoreNotFound
from unit.helpers import ADMIN, Service, staff, user_request


async def test_a_new_store_keeps_every_setting_it_was_given() -> None:
    service = Service()
    new = NewStore(
        name="Onion Bakery",
        time_zone="Asia/Tokyo",
        max_party_size=6,
        max_queue_size=40,
        avg_service_minutes=7,
        waiting_open=True,
    )

    view = await CreateStore(service.uow_factory, service.clock)(ADMIN, new)

    stored = service.db.stores[view["id"]]
    assert (stored.time_zone, stored.max_party_size, stored.max_queue_size) == ("Asia/Tokyo", 6, 40)
    assert (stored.avg_service_minutes, stored.waiting_open) == (7, True)
    assert view == {
        "id": stored.id,
        "name": "Onion Bakery",
        "timeZone": "Asia/Tokyo",
        "waitingOpen": True,
        "maxPartySize": 6,
        "maxQueueSize": 40,
        "avgServiceMinutes": 7,
        "notifyAtRank": 3,
        "maxPostpones": 1,
        "dayStartsAt": "00:00",
        "webhookUrl": None,
    }


async def test_an_unknown_store_is_named_in_the_refusal() -> None:
    service = Service()

    with pytest.raises(StoreNotFound) as refused:
        async with service.uow() as uow:
            await existing_store(uow, 404)

    assert refused.value.detail == "store 404 not found"


async def test_a_waiting_of_another_store_is_not_found_by_this_stores_staff() -> None:
    service = Service()
    here, there = await service.add_store(name="Here"), await service.add_store(name="There")
    theirs = await service.register(user_request(there.id))

    with pytest.raises(NotFound) as refused:
        await service.move.by_store(staff(here.id), here.id, theirs["id"], "call")

    assert refused.value.detail == "waiting not found"


@dataclass
class ContendedService(Service):
    """Every commit after `free` ones is refused, as if another writer always changed the waiting first."""

    free: int = 1_000
    refused: int = 0

    def uow(self) -> UnitOfWork:
        return ContendedUnitOfWork(self)


class ContendedUnitOfWork(MemoryUnitOfWork):
    def __init__(self, service: ContendedService) -> None:
        super().__init__(service.db)
        self._service = service

    async def commit(self) -> None:
        if self._service.free <= 0:
            self._service.refused += 1
            raise ConcurrencyConflict("changed meanwhile")
        self._service.free -= 1
        await super().commit()


async def test_a_waiting_that_keeps_changing_is_tried_three_times_then_refused() -> None:
    service = ContendedService()
    store = await service.add_store()
    waiting = await service.register(user_request(store.id))
    service.free = 0

    with pytest.raises(ConcurrencyConflict) as refused:
        await service.move.by_store(staff(store.id), store.id, waiting["id"], "call")

    assert service.refused == 3
    assert str(refused.value) == "the waiting kept changing; try again"
