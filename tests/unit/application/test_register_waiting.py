"""V2: RegisterWaiting decides at once under the store's lock."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest

from application.access import Forbidden
from application.registration import LockTimes, NewRequests, store_lock_key
from domain.errors import (
    AlreadyWaiting,
    LockTimeout,
    QueueFull,
    StoreNotFound,
    ValidationError,
    WaitingClosed,
)
from unit.helpers import Service, customer, event_types, guest_request, staff, user_request


async def test_registrations_get_numbers_and_ranks_in_order() -> None:
    service = Service()
    store = await service.add_store(avg_service_minutes=5)

    first = await service.register(user_request(store.id, "u1"))
    second = await service.register(user_request(store.id, "u2"))

    assert (first["number"], first["rank"], first["estimatedWaitMinutes"]) == (1, 1, 0)
    assert (second["number"], second["rank"], second["estimatedWaitMinutes"]) == (2, 2, 5)
    assert second["status"] == "WAITING"
    assert second["businessDate"] == "2026-03-02"


async def test_the_waiting_keeps_the_requests_trace_id() -> None:
    service = Service()
    store = await service.add_store()

    view = await service.register(user_request(store.id, trace_id="trace-a"))

    assert service.db.waitings[view["id"]].trace_id == "trace-a"


async def test_a_registration_is_announced_on_the_stores_stream() -> None:
    service = Service()
    store = await service.add_store()

    await service.register(user_request(store.id))

    assert await event_types(service.notifier, f"store:{store.id}") == ["registered"]


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"waiting_open": False}, WaitingClosed),
        ({"max_queue_size": 1}, QueueFull),
    ],
)
async def test_an_admission_refusal_takes_no_number(
    settings: dict[str, object], error: type[Exception]
) -> None:
    service = Service()
    store = await service.add_store(**settings)  # type: ignore[arg-type]
    if store.waiting_open:
        await service.register(user_request(store.id, "u1"))

    with pytest.raises(error):
        await service.register(user_request(store.id, "u2"))

    assert service.waiting_numbers(store.id) == ([1] if store.waiting_open else [])


async def test_a_customer_already_waiting_is_refused_and_takes_no_number() -> None:
    service = Service()
    store = await service.add_store()
    await service.register(user_request(store.id, "u1"))

    with pytest.raises(AlreadyWaiting):
        await service.register(user_request(store.id, "u1"))

    assert (await service.register(user_request(store.id, "u2")))["number"] == 2


async def test_a_guest_is_the_same_customer_under_another_name() -> None:
    service = Service()
    store = await service.add_store()
    await service.register(guest_request(store.id, name="김민수"))

    with pytest.raises(AlreadyWaiting):
        await service.register(guest_request(store.id, name="Minsu"))


async def test_a_customer_may_wait_at_two_stores_at_once() -> None:
    service = Service()
    bakery, noodles = await service.add_store(), await service.add_store("Noodle Bar")

    assert (await service.register(user_request(bakery.id, "u1")))["number"] == 1
    assert (await service.register(user_request(noodles.id, "u1")))["number"] == 1


@pytest.mark.parametrize("party_size", [0, 5])
async def test_a_party_size_outside_the_stores_bounds_is_a_validation_error(party_size: int) -> None:
    service = Service()
    store = await service.add_store(max_party_size=4)

    with pytest.raises(ValidationError):
        await service.register(user_request(store.id, party_size=party_size))

    assert service.waiting_numbers(store.id) == []


async def test_an_unknown_store_is_not_found() -> None:
    with pytest.raises(StoreNotFound):
        await Service().register(user_request(404))


async def test_a_customer_may_register_again_after_leaving_and_gets_a_new_number() -> None:
    service = Service()
    store = await service.add_store()
    first = await service.register(user_request(store.id, "u1"))
    await service.move.by_customer(customer("u1"), first["id"])

    again = await service.register(user_request(store.id, "u1"))

    assert again["number"] == 2


async def test_numbers_restart_at_local_midnight_and_are_never_reused_within_a_day() -> None:
    service = Service()
    store = await service.add_store()
    service.clock.set(datetime(2026, 3, 2, 14, 59, 58, tzinfo=UTC))
    first = await service.register(user_request(store.id, "u1"))
    await service.move.by_store(staff(store.id), store.id, first["id"], "cancel")
    second = await service.register(user_request(store.id, "u2"))

    service.clock.advance(timedelta(seconds=2))
    next_day = await service.register(user_request(store.id, "u3"))

    assert [(v["businessDate"], v["number"]) for v in (first, second, next_day)] == [
        ("2026-03-02", 1),
        ("2026-03-02", 2),
        ("2026-03-03", 1),
    ]
    # Yesterday's waiting is still in the queue, but ranks count the same business day only.
    assert next_day["rank"] == 1
    assert {w.business_date for w in service.db.waitings.values()} == {date(2026, 3, 2), date(2026, 3, 3)}


async def test_a_waiting_left_over_from_yesterday_neither_blocks_its_customer_nor_fills_the_list() -> None:
    service = Service()
    store = await service.add_store(max_queue_size=1)
    await service.register(user_request(store.id, "u1"))
    with pytest.raises(QueueFull):
        await service.register(user_request(store.id, "u2"))
    service.clock.advance(timedelta(days=1))

    again = await service.register(user_request(store.id, "u1"))

    assert (again["number"], again["rank"]) == (1, 1)
    with pytest.raises(AlreadyWaiting):
        await service.register(user_request(store.id, "u1"))
    with pytest.raises(QueueFull):
        await service.register(user_request(store.id, "u2"))


async def test_a_busy_store_lock_times_out() -> None:
    service = Service(lock_times=LockTimes(wait=0.05, lease=10))
    store = await service.add_store()

    async with service.lock.hold(store_lock_key(store.id), wait_time=0, lease_time=None):
        with pytest.raises(LockTimeout):
            await service.register(user_request(store.id))

    assert service.waiting_numbers(store.id) == []


async def test_one_stores_lock_does_not_hold_up_another_store() -> None:
    service = Service(lock_times=LockTimes(wait=0.05, lease=10))
    bakery, noodles = await service.add_store(), await service.add_store("Noodle Bar")

    async with service.lock.hold(store_lock_key(bakery.id), wait_time=0, lease_time=None):
        assert (await service.register(user_request(noodles.id)))["number"] == 1


async def test_a_waiting_registration_proceeds_once_the_lock_is_released() -> None:
    service = Service()
    store = await service.add_store()
    key = store_lock_key(store.id)

    async with service.lock.hold(key, wait_time=0, lease_time=None):
        pending = asyncio.create_task(service.register(user_request(store.id)))
        await asyncio.sleep(0.01)
        assert not pending.done()

    assert (await pending)["number"] == 1


class TestNewRequests:
    def test_a_customer_request_is_stamped_with_the_subject_the_time_and_a_fresh_trace_id(self) -> None:
        service = Service()
        requests = NewRequests(service.clock)

        one, two = (requests.for_customer(customer("u1"), 7, 2) for _ in range(2))

        assert (one.user_id, one.store_id, one.party_size) == ("u1", 7, 2)
        assert one.requested_at == service.clock.now()
        assert one.trace_id != two.trace_id

    def test_only_customers_join_through_the_app(self) -> None:
        with pytest.raises(Forbidden):
            NewRequests(Service().clock).for_customer(staff(7), 7, 2)

    def test_a_guest_request_is_normalised(self) -> None:
        request = NewRequests(Service().clock).for_guest(staff(7), 7, " 김민수 ", "010-1234-5678", 2)

        assert (request.name, request.phone_number) == ("김민수", "+821012345678")
        assert request.customer.key == "phone:+821012345678"

    def test_guests_join_only_at_their_stores_tablet(self) -> None:
        with pytest.raises(Forbidden):
            NewRequests(Service().clock).for_guest(staff(8), 7, "김민수", "010-1234-5678", 2)

    def test_a_guest_with_a_landline_is_refused_before_anything_is_queued(self) -> None:
        with pytest.raises(ValidationError):
            NewRequests(Service().clock).for_guest(staff(7), 7, "김민수", "02-123-4567", 2)


async def test_a_registration_never_overtakes_requests_already_answered_queued() -> None:
    """FIFO across V2 and V3: a 202 QUEUED was accepted earlier than a later 201."""
    service = Service()
    store = await service.add_store()
    queued = await service.submit(user_request(store.id, "early"))  # the worker has not run

    now = await service.register(user_request(store.id, "late"))

    decided = await service.statuses.get(queued.trace_id)
    assert decided is not None and decided.waiting_id is not None
    early = await service.queries.waiting(staff(store.id), decided.waiting_id)
    assert (early["number"], now["number"]) == (1, 2)
