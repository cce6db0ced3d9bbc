"""Day stats read through the use case, and two edges of the arithmetic that the mutation run
(scripts/mutation) found untested beside test_day_stats.py."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from application.access import Forbidden
from application.stats import QuarterHour, ReadDayStats, day_stats
from domain.errors import StoreNotFound
from unit.helpers import ADMIN, NOON_IN_SEOUL, Service, customer, guest_request, staff, user_request


def read(service: Service) -> ReadDayStats:
    return ReadDayStats(service.uow_factory, service.clock)


async def test_staff_read_todays_stats_unless_they_name_a_day() -> None:
    service = Service()
    store = await service.add_store()
    await service.register(user_request(store.id, "yesterday"))
    service.clock.advance(timedelta(days=1))
    for user in ("u1", "u2"):
        await service.register(user_request(store.id, user))

    today = await read(service)(staff(store.id), store.id)
    yesterday = await read(service)(ADMIN, store.id, date(2026, 3, 2))

    assert (today.store_id, today.business_date, today.registrations.total) == (store.id, date(2026, 3, 3), 2)
    assert (yesterday.business_date, yesterday.registrations.total, yesterday.day_over) == (
        date(2026, 3, 2),
        1,
        True,
    )
    assert today.day_over is False


async def test_the_stats_are_for_the_stores_staff() -> None:
    service = Service()
    store = await service.add_store()

    with pytest.raises(Forbidden):
        await read(service)(staff(store.id + 1), store.id)
    with pytest.raises(StoreNotFound):
        await read(service)(ADMIN, 404)


async def test_registrations_within_one_quarter_hour_count_together_to_the_microsecond() -> None:
    service = Service()
    store = await service.add_store()
    service.clock.set(NOON_IN_SEOUL + timedelta(seconds=1, microseconds=250_000))
    await service.register(user_request(store.id, "u1"))
    service.clock.advance(timedelta(minutes=14, microseconds=500_000))
    await service.register(user_request(store.id, "u2"))

    stats = await read(service)(staff(store.id), store.id)

    assert stats.registrations_per_15_minutes == [QuarterHour(NOON_IN_SEOUL, 2)]


async def test_as_many_no_shows_as_seated_is_a_rate_of_one_half() -> None:
    service = Service()
    store = await service.add_store()
    ids = [(await service.register(user_request(store.id, user)))["id"] for user in ("u1", "u2")]
    for waiting_id, last in zip(ids, ["seat", "no_show"], strict=True):
        await service.move.by_store(staff(store.id), store.id, waiting_id, "call")
        await service.move.by_store(staff(store.id), store.id, waiting_id, last)

    stats = day_stats(store, date(2026, 3, 2), list(service.db.waitings.values()), NOON_IN_SEOUL)

    assert (stats.seated, stats.no_shows, stats.no_show_rate) == (1, 1, 0.5)


async def test_cancellations_count_apart_by_who_cancelled_and_say_when() -> None:
    service = Service()
    store = await service.add_store()
    by_store, by_customer, by_guest = [
        await service.register(request)
        for request in (user_request(store.id, "u1"), user_request(store.id, "u2"), guest_request(store.id))
    ]

    cancelled = await service.move.by_store(staff(store.id), store.id, by_store["id"], "cancel")
    await service.move.by_customer(customer("u2"), by_customer["id"])
    await service.move.by_guest(by_guest["statusToken"])

    stats = await read(service)(staff(store.id), store.id)
    assert (stats.cancelled.total, stats.cancelled.by_store, stats.cancelled.by_customer) == (3, 1, 2)
    assert cancelled["cancelledAt"] == NOON_IN_SEOUL.isoformat()
