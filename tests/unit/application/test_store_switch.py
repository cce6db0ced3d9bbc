"""Creating stores and opening or closing their lists."""

from __future__ import annotations

import pytest

from application.access import Forbidden
from application.stores import CreateStore, NewStore
from domain.errors import StoreNotFound, ValidationError, WaitingClosed
from unit.helpers import ADMIN, Service, customer, event_types, staff, user_request


async def test_only_an_admin_creates_a_store_and_it_starts_closed() -> None:
    service = Service()
    create = CreateStore(service.uow_factory, service.clock)

    view = await create(ADMIN, NewStore(name=" Onion Bakery "))

    assert (view["name"], view["waitingOpen"], view["timeZone"]) == ("Onion Bakery", False, "Asia/Seoul")
    with pytest.raises(Forbidden):
        await create(staff(view["id"]), NewStore(name="Mine"))


async def test_a_store_with_bad_settings_is_not_created() -> None:
    service = Service()

    with pytest.raises(ValidationError):
        await CreateStore(service.uow_factory, service.clock)(
            ADMIN, NewStore(name="x", time_zone="Mars/Olympus")
        )

    assert service.db.stores == {}


async def test_staff_open_and_close_their_list_and_the_store_stream_hears_it() -> None:
    service = Service()
    store = await service.add_store(waiting_open=False)

    await service.switch(staff(store.id), store.id, open_=True)
    registered = await service.register(user_request(store.id))
    await service.switch(staff(store.id), store.id, open_=False)

    assert registered["number"] == 1
    with pytest.raises(WaitingClosed):
        await service.register(user_request(store.id, "u2"))
    assert await event_types(service.notifier, f"store:{store.id}") == ["opened", "registered", "closed"]


async def test_closing_keeps_the_waitings_already_registered() -> None:
    service = Service()
    store = await service.add_store()
    await service.register(user_request(store.id))

    await service.switch(staff(store.id), store.id, open_=False)

    assert (await service.queries.public_store(store.id))["waitingCount"] == 1


@pytest.mark.parametrize("actor", [customer("u1"), staff(999)])
async def test_only_the_stores_staff_switch_its_list(actor: object) -> None:
    service = Service()
    store = await service.add_store()

    with pytest.raises(Forbidden):
        await service.switch(actor, store.id, open_=False)  # type: ignore[arg-type]


async def test_switching_an_unknown_store_is_not_found() -> None:
    with pytest.raises(StoreNotFound):
        await Service().switch(ADMIN, 404, open_=True)
