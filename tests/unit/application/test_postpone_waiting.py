"""A customer or a guest steps back in the queue (DOMAIN.md, "Queue order and postpone"): the answer,
what those passed and the store's stream hear, the reads after, and who may.
(Over HTTP: tests/http/test_store_tools.py.)"""

from __future__ import annotations

import pytest

from application.access import Forbidden
from application.ports import ConcurrencyConflict
from application.views import View
from domain.errors import InvalidTransition, NotFound, PostponeLimit
from unit.application.test_close_alerts import CloseService, close_events
from unit.application.test_mutants_stores_and_moves import ContendedService
from unit.helpers import ADMIN, Service, customer, guest_request, published, staff, user_request


async def five_in_line(service: Service, **settings: object) -> tuple[int, list[View]]:
    store = await service.add_store(avg_service_minutes=5, **settings)  # type: ignore[arg-type]
    return store.id, [await service.register(user_request(store.id, f"c{i}")) for i in range(1, 6)]


def ranks_heard(events: list[object]) -> list[dict[str, object]]:
    return [dict(e.data) for e in events if e.type == "rank"]  # type: ignore[attr-defined]


async def test_a_customer_steps_back_and_the_queue_follows() -> None:
    service = Service()
    store_id, joined = await five_in_line(service)

    moved = await service.move.postpone(customer("c2"), joined[1]["id"], 2)

    assert (moved["number"], moved["rank"], moved["estimatedWaitMinutes"]) == (2, 4, 15)
    assert "statusToken" not in moved
    assert ranks_heard(await published(service.notifier, f"waiting:{joined[2]['id']}")) == [
        {"rank": 2, "estimatedWaitMinutes": 5}
    ]
    assert ranks_heard(await published(service.notifier, f"waiting:{joined[3]['id']}")) == [
        {"rank": 3, "estimatedWaitMinutes": 10}
    ]
    assert ranks_heard(await published(service.notifier, f"waiting:{joined[4]['id']}")) == []
    heard = (await published(service.notifier, f"store:{store_id}"))[-1]
    assert (heard.type, heard.data["number"], heard.data["rank"]) == ("postponed", 2, 4)
    listed = await service.queries.store_waitings(ADMIN, store_id, None)
    assert [(w["number"], w["rank"]) for w in listed["items"]] == [(1, 1), (3, 2), (4, 3), (2, 4), (5, 5)]
    assert (await service.queries.waiting(customer("c2"), joined[1]["id"]))["rank"] == 4


async def test_stepping_back_further_than_the_end_goes_to_the_end() -> None:
    service = Service()
    _, joined = await five_in_line(service)

    moved = await service.move.postpone(customer("c4"), joined[3]["id"], 5)

    assert moved["rank"] == 5


async def test_at_the_end_already_nothing_moves_and_no_postpone_is_spent() -> None:
    service = Service()
    store_id, joined = await five_in_line(service)

    stayed = await service.move.postpone(customer("c5"), joined[4]["id"], 1)
    moved = await service.move.postpone(customer("c5"), joined[4]["id"], 1)

    assert (stayed["rank"], moved["rank"]) == (5, 5)
    assert [e.type for e in await published(service.notifier, f"store:{store_id}")].count("postponed") == 2


async def test_postpones_are_limited_by_the_store() -> None:
    service = Service()
    _, joined = await five_in_line(service, max_postpones=1)
    await service.move.postpone(customer("c1"), joined[0]["id"], 1)

    with pytest.raises(PostponeLimit) as refused:
        await service.move.postpone(customer("c1"), joined[0]["id"], 1)

    assert refused.value.detail == "this waiting may postpone 1 time(s) at this store"


async def test_a_called_waiting_does_not_postpone() -> None:
    service = Service()
    store_id, joined = await five_in_line(service)
    await service.move.by_store(staff(store_id), store_id, joined[0]["id"], "call")

    with pytest.raises(InvalidTransition):
        await service.move.postpone(customer("c1"), joined[0]["id"], 1)


async def test_only_the_waiting_customer_postpones_their_own() -> None:
    service = Service()
    store_id, joined = await five_in_line(service)

    with pytest.raises(NotFound):
        await service.move.postpone(customer("c2"), joined[0]["id"], 1)
    with pytest.raises(Forbidden):
        await service.move.postpone(staff(store_id), joined[0]["id"], 1)


async def test_a_guest_postpones_through_the_link_and_sees_a_masked_answer() -> None:
    service = Service()
    store = await service.add_store()
    guest = await service.register(guest_request(store.id, name="김민수"))
    await service.register(user_request(store.id, "c2"))

    moved = await service.move.postpone_by_guest(guest["statusToken"], 1)

    assert (moved["rank"], moved["name"], moved["phoneNumber"]) == (2, "김*수", "010-****-5678")
    assert "statusToken" not in moved
    with pytest.raises(NotFound):
        await service.move.postpone_by_guest("not-a-token", 1)


async def test_a_queue_that_keeps_changing_is_tried_three_times_then_refused() -> None:
    service = ContendedService()
    _, joined = await five_in_line(service)
    service.free = 0

    with pytest.raises(ConcurrencyConflict) as refused:
        await service.move.postpone(customer("c1"), joined[0]["id"], 1)

    assert service.refused == 3
    assert str(refused.value) == "the queue kept changing; try again"


async def test_only_waiting_entries_count_among_the_places_stepped_back() -> None:
    service = Service()
    store_id, joined = await five_in_line(service)
    await service.move.by_store(staff(store_id), store_id, joined[1]["id"], "call")

    moved = await service.move.postpone(customer("c1"), joined[0]["id"], 2)

    listed = await service.queries.store_waitings(ADMIN, store_id, None)
    assert moved["rank"] == 3
    # The places of the two passed are handed round; the called one keeps its own.
    assert [(w["number"], w.get("rank")) for w in listed["items"]] == [
        (3, 1),
        (2, None),
        (4, 2),
        (1, 3),
        (5, 4),
    ]


async def test_those_passed_who_reach_the_stores_notify_rank_hear_that_their_turn_is_close() -> None:
    service = CloseService()
    store = await service.add_store(notify_at_rank=2)
    joined = [await service.register(user_request(store.id, f"c{i}")) for i in range(1, 5)]
    told_before = [len(await close_events(service, waiting)) for waiting in joined]

    await service.move.postpone(customer("c1"), joined[0]["id"], 2)

    told_after = [len(await close_events(service, waiting)) for waiting in joined]
    assert told_before == [1, 1, 0, 0]
    assert told_after == [1, 1, 1, 0]  # c3 moved up to rank 2; c2 was told already
    assert await close_events(service, joined[2]) == [{"rank": 2, "estimatedWaitMinutes": None}]
