"""MoveWaiting: the store moves its waitings along; a customer or a guest may only cancel their own."""

from __future__ import annotations

from datetime import timedelta

import pytest

from application.access import Forbidden
from application.views import View
from domain.errors import InvalidTransition, NotFound
from unit.helpers import ADMIN, Service, customer, event_types, guest_request, staff, user_request


async def registered(service: Service, store_id: int, user_id: str = "u1") -> View:
    return await service.register(user_request(store_id, user_id))


async def test_the_store_calls_then_seats_stamping_each_moment() -> None:
    service = Service()
    store = await service.add_store()
    waiting = await registered(service, store.id)

    service.clock.advance(timedelta(minutes=10))
    called = await service.move.by_store(staff(store.id), store.id, waiting["id"], "call")
    called_at = service.clock.now()
    service.clock.advance(timedelta(minutes=2))
    seated = await service.move.by_store(staff(store.id), store.id, waiting["id"], "seat")

    assert called["status"] == "CALLED"
    assert (seated["status"], seated["calledAt"]) == ("SEATED", called_at.isoformat())
    assert seated["seatedAt"] == service.clock.now().isoformat()
    assert service.db.waitings[waiting["id"]].status == "SEATED"


async def test_the_store_marks_a_called_waiting_as_no_show() -> None:
    service = Service()
    store = await service.add_store()
    waiting = await registered(service, store.id)
    await service.move.by_store(staff(store.id), store.id, waiting["id"], "call")

    no_show = await service.move.by_store(staff(store.id), store.id, waiting["id"], "no_show")

    assert (no_show["status"], no_show["noShowAt"]) == ("NO_SHOW", service.clock.now().isoformat())


@pytest.mark.parametrize("first", [None, "call"])
async def test_the_store_cancels_a_waiting_or_called_waiting(first: str | None) -> None:
    service = Service()
    store = await service.add_store()
    waiting = await registered(service, store.id)
    if first:
        await service.move.by_store(staff(store.id), store.id, waiting["id"], first)

    cancelled = await service.move.by_store(staff(store.id), store.id, waiting["id"], "cancel")

    assert cancelled["status"] == "CANCELLED"


@pytest.mark.parametrize("action", ["seat", "no_show"])
async def test_a_waiting_not_yet_called_cannot_be_seated_or_missed(action: str) -> None:
    service = Service()
    store = await service.add_store()
    waiting = await registered(service, store.id)

    with pytest.raises(InvalidTransition):
        await service.move.by_store(staff(store.id), store.id, waiting["id"], action)

    assert service.db.waitings[waiting["id"]].status == "WAITING"


async def test_an_admin_may_act_for_any_store() -> None:
    service = Service()
    store = await service.add_store()
    waiting = await registered(service, store.id)

    assert (await service.move.by_store(ADMIN, store.id, waiting["id"], "call"))["status"] == "CALLED"


@pytest.mark.parametrize("actor", [customer("u1"), staff(999)])
async def test_others_are_forbidden_store_actions(actor: object) -> None:
    service = Service()
    store = await service.add_store()
    waiting = await registered(service, store.id)

    with pytest.raises(Forbidden):
        await service.move.by_store(actor, store.id, waiting["id"], "cancel")  # type: ignore[arg-type]


async def test_a_waiting_of_another_store_is_not_found_through_this_store() -> None:
    service = Service()
    bakery, noodles = await service.add_store(), await service.add_store("Noodle Bar")
    waiting = await registered(service, noodles.id)

    with pytest.raises(NotFound):
        await service.move.by_store(staff(bakery.id), bakery.id, waiting["id"], "call")


async def test_an_unknown_waiting_is_not_found() -> None:
    service = Service()
    store = await service.add_store()

    with pytest.raises(NotFound):
        await service.move.by_store(staff(store.id), store.id, 12345, "call")


async def test_a_customer_cancels_their_own_waiting() -> None:
    service = Service()
    store = await service.add_store()
    waiting = await registered(service, store.id, "u1")

    cancelled = await service.move.by_customer(customer("u1"), waiting["id"])

    assert cancelled["status"] == "CANCELLED"
    assert "statusToken" not in cancelled


async def test_another_customers_waiting_is_not_found() -> None:
    service = Service()
    store = await service.add_store()
    waiting = await registered(service, store.id, "u1")

    with pytest.raises(NotFound):
        await service.move.by_customer(customer("u2"), waiting["id"])

    assert service.db.waitings[waiting["id"]].status == "WAITING"


async def test_staff_do_not_cancel_through_the_customer_path() -> None:
    service = Service()
    store = await service.add_store()
    waiting = await registered(service, store.id)

    with pytest.raises(Forbidden):
        await service.move.by_customer(staff(store.id), waiting["id"])


async def test_a_customer_cannot_cancel_twice() -> None:
    service = Service()
    store = await service.add_store()
    waiting = await registered(service, store.id, "u1")
    await service.move.by_customer(customer("u1"), waiting["id"])

    with pytest.raises(InvalidTransition):
        await service.move.by_customer(customer("u1"), waiting["id"])


async def test_a_guest_cancels_with_their_status_token_and_sees_a_masked_view() -> None:
    service = Service()
    store = await service.add_store()
    waiting = await service.register(guest_request(store.id, name="김민수"))

    cancelled = await service.move.by_guest(waiting["statusToken"])

    assert cancelled["status"] == "CANCELLED"
    assert (cancelled["name"], cancelled["phoneNumber"]) == ("김*수", "010-****-5678")
    assert "statusToken" not in cancelled


async def test_an_unknown_status_token_is_not_found() -> None:
    service = Service()
    await service.add_store()

    with pytest.raises(NotFound):
        await service.move.by_guest("no-such-token")


async def test_each_move_is_announced_on_the_waitings_and_the_stores_streams() -> None:
    service = Service()
    store = await service.add_store()
    waiting = await registered(service, store.id)

    for action in ("call", "seat"):
        await service.move.by_store(staff(store.id), store.id, waiting["id"], action)

    assert await event_types(service.notifier, f"waiting:{waiting['id']}") == ["called", "seated"]
    assert await event_types(service.notifier, f"store:{store.id}") == ["registered", "called", "seated"]
