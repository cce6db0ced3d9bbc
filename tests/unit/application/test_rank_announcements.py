"""When someone ahead leaves the queue, everyone behind hears their new rank; no one else does."""

from __future__ import annotations

import pytest

from application.views import View
from unit.helpers import Service, customer, published, staff, user_request


async def queue_of(service: Service, size: int, **settings: object) -> tuple[int, list[View]]:
    store = await service.add_store(**settings)  # type: ignore[arg-type]
    return store.id, [await service.register(user_request(store.id, f"u{i}")) for i in range(size)]


async def rank_events(service: Service, waiting: View) -> list[dict[str, object]]:
    return [
        dict(e.data)
        for e in await published(service.notifier, f"waiting:{waiting['id']}")
        if e.type == "rank"
    ]


@pytest.mark.parametrize("action", ["call", "cancel"])
async def test_those_behind_move_up_when_the_first_leaves_the_queue(action: str) -> None:
    service = Service()
    store_id, (first, second, third) = await queue_of(service, 3, avg_service_minutes=4)

    await service.move.by_store(staff(store_id), store_id, first["id"], action)

    assert await rank_events(service, second) == [{"rank": 1, "estimatedWaitMinutes": 0}]
    assert await rank_events(service, third) == [{"rank": 2, "estimatedWaitMinutes": 4}]
    assert await rank_events(service, first) == []


async def test_those_ahead_hear_nothing_when_someone_behind_leaves() -> None:
    service = Service()
    _, (first, second, third) = await queue_of(service, 3)

    await service.move.by_customer(customer("u1"), second["id"])

    assert await rank_events(service, first) == []
    assert await rank_events(service, third) == [{"rank": 2, "estimatedWaitMinutes": None}]


async def test_a_called_waiting_leaving_changes_no_rank() -> None:
    service = Service()
    store_id, (first, second) = await queue_of(service, 2)
    await service.move.by_store(staff(store_id), store_id, first["id"], "call")
    before = await rank_events(service, second)

    await service.move.by_store(staff(store_id), store_id, first["id"], "seat")

    assert await rank_events(service, second) == before == [{"rank": 1, "estimatedWaitMinutes": None}]


async def test_a_guest_cancelling_moves_those_behind_up() -> None:
    service = Service()
    _, (first, second) = await queue_of(service, 2)
    token = service.db.waitings[first["id"]].status_token

    await service.move.by_guest(token)

    assert await rank_events(service, second) == [{"rank": 1, "estimatedWaitMinutes": None}]


async def test_a_called_waiting_behind_the_one_who_leaves_hears_no_rank() -> None:
    service = Service()
    store_id, (first, called, third) = await queue_of(service, 3)
    await service.move.by_store(staff(store_id), store_id, called["id"], "call")

    await service.move.by_store(staff(store_id), store_id, first["id"], "cancel")

    assert await rank_events(service, called) == []
    assert await rank_events(service, third) == [
        {"rank": 2, "estimatedWaitMinutes": None},
        {"rank": 1, "estimatedWaitMinutes": None},
    ]
