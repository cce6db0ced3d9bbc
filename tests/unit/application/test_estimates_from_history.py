"""Once the day has a pace of calls, every read and every live event estimates from it, not from
the store's setting (DOMAIN.md, "Estimate from history"; over HTTP: tests/http/test_store_tools.py)."""

from __future__ import annotations

from datetime import timedelta

from application.views import View
from domain.waiting import WaitingStatus
from unit.helpers import Service, customer, published, staff, user_request

CONFIGURED, PACE = 5, 2  # minutes per party: the store's setting, and the day's calls two minutes apart


async def a_day_with_a_pace(service: Service) -> tuple[int, list[View]]:
    """Nine joined; the first six called two minutes apart (five intervals: a pace). c6, c7 and c8 wait."""
    store = await service.add_store(avg_service_minutes=CONFIGURED)
    joined = [await service.register(user_request(store.id, f"c{i}")) for i in range(9)]
    for waiting in joined[:6]:
        service.clock.advance(timedelta(minutes=PACE))
        await service.move.by_store(staff(store.id), store.id, waiting["id"], "call")
    return store.id, joined


def estimates(items: list[View]) -> list[int | None]:
    return [item.get("estimatedWaitMinutes") for item in items if item["status"] == "WAITING"]


async def test_five_intervals_make_a_pace_and_four_do_not() -> None:
    service = Service()
    store = await service.add_store(avg_service_minutes=CONFIGURED)
    joined = [await service.register(user_request(store.id, f"c{i}")) for i in range(7)]
    for waiting in joined[:5]:
        service.clock.advance(timedelta(minutes=PACE))
        await service.move.by_store(staff(store.id), store.id, waiting["id"], "call")
    before = await service.queries.public_store(store.id)
    service.clock.advance(timedelta(minutes=PACE))
    await service.move.by_store(staff(store.id), store.id, joined[5]["id"], "call")

    after = await service.queries.public_store(store.id)

    assert (before["estimateSource"], before["estimatedWaitMinutes"]) == ("configured", 2 * CONFIGURED)
    assert (after["estimateSource"], after["estimatedWaitMinutes"]) == ("history", 1 * PACE)


async def test_the_reads_estimate_from_the_days_pace() -> None:
    service = Service()
    store_id, joined = await a_day_with_a_pace(service)

    public = await service.queries.public_store(store_id)
    last = await service.queries.waiting(customer("c8"), joined[8]["id"])
    listed = await service.queries.store_waitings(staff(store_id), store_id, WaitingStatus.WAITING)
    snapshot = await service.queries.store_snapshot(staff(store_id), store_id)

    assert (public["waitingCount"], public["estimateSource"], public["estimatedWaitMinutes"]) == (
        3,
        "history",
        6,
    )
    assert (last["rank"], last["estimatedWaitMinutes"]) == (3, 4)
    assert estimates(listed["items"]) == estimates(snapshot["items"]) == [0, 2, 4]


async def test_a_newcomer_is_answered_and_announced_with_the_days_pace() -> None:
    service = Service()
    store_id, _ = await a_day_with_a_pace(service)

    by_v2 = await service.register(user_request(store_id, "late"))
    queued = user_request(store_id, "later")
    [outcome] = await service.process([queued])

    registered = [e for e in await published(service.notifier, f"store:{store_id}") if e.type == "registered"]
    assert (by_v2["rank"], by_v2["estimatedWaitMinutes"]) == (4, 6)
    assert [(e.data["rank"], e.data["estimatedWaitMinutes"]) for e in registered[-2:]] == [(4, 6), (5, 8)]
    assert outcome.waiting_id == registered[-1].data["id"]


async def test_those_behind_a_departure_hear_a_rank_estimated_from_the_days_pace() -> None:
    service = Service()
    store_id, joined = await a_day_with_a_pace(service)
    service.clock.advance(timedelta(minutes=PACE))

    await service.move.by_store(staff(store_id), store_id, joined[6]["id"], "call")

    heard = [
        e.data for e in await published(service.notifier, f"waiting:{joined[8]['id']}") if e.type == "rank"
    ]
    assert dict(heard[-1]) == {"rank": 2, "estimatedWaitMinutes": PACE}


async def test_a_postpone_is_answered_and_announced_with_the_days_pace() -> None:
    service = Service()
    store_id, joined = await a_day_with_a_pace(service)

    moved = await service.move.postpone(customer("c6"), joined[6]["id"], 2)

    last_rank = [
        e.data for e in await published(service.notifier, f"waiting:{joined[8]['id']}") if e.type == "rank"
    ]
    postponed = (await published(service.notifier, f"store:{store_id}"))[-1]
    assert (moved["rank"], moved["estimatedWaitMinutes"]) == (3, 2 * PACE)
    assert dict(last_rank[-1]) == {"rank": 2, "estimatedWaitMinutes": PACE}
    assert (postponed.type, postponed.data["estimatedWaitMinutes"]) == ("postponed", 2 * PACE)
