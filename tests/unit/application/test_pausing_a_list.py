"""Staff pause their list: the answer, the store's stream and the public view say until when, and
only while it lasts (over HTTP: tests/http/test_store_tools.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from application.access import Forbidden
from domain.errors import FieldError, ValidationError, WaitingClosed, WaitingPaused
from unit.helpers import NOON_IN_SEOUL, Service, customer, published, staff, user_request

UNTIL = (NOON_IN_SEOUL + timedelta(minutes=20)).isoformat()


async def test_a_pause_is_answered_heard_and_shown_with_its_end() -> None:
    service = Service()
    store = await service.add_store()

    answer = await service.switch.pause(staff(store.id), store.id, 20)

    [heard] = await published(service.notifier, f"store:{store.id}")
    public = await service.queries.public_store(store.id)
    snapshot = await service.queries.store_snapshot(staff(store.id), store.id)
    assert (answer["id"], answer["waitingOpen"], answer["pausedUntil"]) == (store.id, True, UNTIL)
    assert (heard.type, dict(heard.data)) == ("paused", answer)
    assert public["pausedUntil"] == snapshot["store"]["pausedUntil"] == UNTIL


async def test_registrations_are_refused_until_the_pause_ends_and_said_in_local_time() -> None:
    service = Service()
    store = await service.add_store()
    await service.switch.pause(staff(store.id), store.id, 20)

    with pytest.raises(WaitingPaused) as refused:
        await service.register(user_request(store.id))
    service.clock.advance(timedelta(minutes=20))
    joined = await service.register(user_request(store.id))

    assert refused.value.detail == f"store {store.id} paused registrations until 11:20"
    assert joined["number"] == 1


async def test_an_ended_pause_is_no_longer_shown() -> None:
    service = Service()
    store = await service.add_store()
    await service.switch.pause(staff(store.id), store.id, 20)
    service.clock.advance(timedelta(minutes=20))

    public = await service.queries.public_store(store.id)
    snapshot = await service.queries.store_snapshot(staff(store.id), store.id)

    assert "pausedUntil" not in public
    assert "pausedUntil" not in snapshot["store"]


async def test_opening_again_ends_the_pause_and_the_stream_hears_the_store_as_it_is() -> None:
    service = Service()
    store = await service.add_store()
    await service.switch.pause(staff(store.id), store.id, 20)

    answer = await service.switch(staff(store.id), store.id, open_=True)

    opened = (await published(service.notifier, f"store:{store.id}"))[-1]
    assert (opened.type, dict(opened.data)) == ("opened", answer)
    assert "pausedUntil" not in answer


async def test_a_pause_is_1_to_240_minutes_and_says_so() -> None:
    service = Service()
    store = await service.add_store()

    with pytest.raises(ValidationError) as refused:
        await service.switch.pause(staff(store.id), store.id, 241)

    assert refused.value.errors == [FieldError("minutes", "must be between 1 and 240")]


async def test_a_closed_list_is_opened_before_it_is_paused() -> None:
    service = Service()
    store = await service.add_store(waiting_open=False)

    with pytest.raises(WaitingClosed) as refused:
        await service.switch.pause(staff(store.id), store.id, 20)

    assert refused.value.detail == f"store {store.id} is not taking registrations: open it before pausing"


@pytest.mark.parametrize("actor", [customer("u1"), staff(999)])
async def test_only_the_stores_staff_pause_its_list(actor: object) -> None:
    service = Service()
    store = await service.add_store()

    with pytest.raises(Forbidden):
        await service.switch.pause(actor, store.id, 20)  # type: ignore[arg-type]
