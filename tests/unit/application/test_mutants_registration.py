"""Registration's edges that the mutation run (scripts/mutation) found untested: what a request
carries, what the streams and logs say, how long a cached store lasts, what gets forgotten."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import pytest

from adapters.lock.local import LocalLock
from adapters.persistence.memory import MemoryUnitOfWork
from adapters.queue.local import LocalRegistrationQueue
from adapters.status.local import LocalRequestStatuses
from application.ports import ConcurrencyConflict, QueueUnavailable, UnitOfWork
from application.registration import LockTimes, NewRequests, RecentStores, RegisterWaiting, register_each
from application.requests import RegistrationRequest, RequestState
from domain.customer import Channel
from domain.errors import LockTimeout, WaitingClosed
from domain.store import Store
from domain.waiting_list import WaitingList
from unit.helpers import (
    NOON_IN_SEOUL,
    PHONE,
    Service,
    SettableClock,
    customer,
    guest_request,
    published,
    staff,
    user_request,
)


class RecordingLock(LocalLock):
    """The local lock, keeping how each hold was asked for; `timeouts` first holds time out."""

    def __init__(self, timeouts: int = 0) -> None:
        super().__init__()
        self.holds: list[tuple[str, float, float | None]] = []
        self.timeouts = timeouts

    @asynccontextmanager
    async def hold(self, key: str, *, wait_time: float, lease_time: float | None) -> AsyncIterator[int]:
        self.holds.append((key, wait_time, lease_time))
        if self.timeouts:
            self.timeouts -= 1
            raise LockTimeout(f"{key} is busy")
        async with super().hold(key, wait_time=wait_time, lease_time=lease_time) as fence:
            yield fence


def test_a_customer_joining_through_the_app_is_a_user_request() -> None:
    request = NewRequests(SettableClock()).for_customer(customer("u9"), 3, 2)

    assert (request.channel, request.user_id, request.store_id) == (Channel.USER, "u9", 3)


def test_a_guest_at_the_tablet_is_an_app_request_stamped_now() -> None:
    request = NewRequests(SettableClock()).for_guest(staff(3), 3, " 김민수 ", PHONE, 4)

    assert uuid.UUID(request.trace_id)
    assert (request.store_id, request.channel, request.party_size) == (3, Channel.APP, 4)
    assert request.requested_at == NOON_IN_SEOUL
    assert (request.name, request.phone_number) == ("김민수", PHONE)


async def test_a_guests_status_token_holds_24_random_bytes() -> None:
    service = Service()
    store = await service.add_store()

    view = await service.register(guest_request(store.id))

    assert len(view["statusToken"]) == 32  # secrets.token_urlsafe(24)


async def test_v2_and_v3_stamp_a_new_waiting_with_the_clocks_now() -> None:
    service = Service()
    store = await service.add_store()

    view = await service.register(user_request(store.id, "u1"))
    [outcome] = await service.process([user_request(store.id, "u2")])

    assert view["createdAt"] == NOON_IN_SEOUL.isoformat()
    assert service.db.waitings[outcome.waiting_id or 0].created_at == NOON_IN_SEOUL


async def test_the_registered_events_carry_the_stores_estimated_wait() -> None:
    service = Service()
    store = await service.add_store(avg_service_minutes=5)

    await service.register(user_request(store.id, "u1"))
    await service.process([user_request(store.id, "u2")])

    events = await published(service.notifier, f"store:{store.id}")
    assert [(e.type, e.data["rank"], e.data["estimatedWaitMinutes"]) for e in events] == [
        ("registered", 1, 0),
        ("registered", 2, 5),
    ]


async def test_both_paths_hold_the_lock_with_the_configured_wait_and_lease() -> None:
    lock = RecordingLock()
    service = Service(lock=lock, lock_times=LockTimes(wait=2.0, lease=7.0))
    store = await service.add_store()

    await service.register(user_request(store.id, "u1"))
    await service.process([user_request(store.id, "u2")])

    key = f"store_waiting:{store.id}"
    assert lock.holds == [(key, 2.0, 7.0), (key, 2.0, 7.0)]


def test_a_refused_request_is_decided_with_no_rank() -> None:
    day = WaitingList(store=Store(id=1, name="Onion Bakery"), business_date=date(2026, 3, 2))

    [(refusal, rank)] = register_each(day, [user_request(1)], NOON_IN_SEOUL)

    assert isinstance(refusal, WaitingClosed) and rank == 0


async def v2_batches(service: Service, register: RegisterWaiting, count: int) -> int:
    """How many lock holds `count` V2 requests cost when they all arrive while the lock is held."""
    lock = service.lock
    assert isinstance(lock, RecordingLock)
    store = await service.add_store()
    release = asyncio.Event()

    async def busy() -> None:
        async with lock.hold(f"store_waiting:{store.id}", wait_time=1.0, lease_time=None):
            await release.wait()

    holder = asyncio.create_task(busy())
    await asyncio.sleep(0)
    calls = [asyncio.create_task(register(user_request(store.id, f"u{i}"))) for i in range(count)]
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.gather(holder, *calls)
    assert service.waiting_numbers(store.id) == list(range(1, count + 1))
    return len(lock.holds) - 1


async def test_v2_decides_at_most_batch_size_requests_per_hold() -> None:
    service = Service(lock=RecordingLock())
    register = RegisterWaiting(
        service.uow_factory,
        service.lock,
        service.clock,
        service.announcer,
        service.lock_times,
        service.queue,
        service.process,
        batch_size=2,
    )

    assert await v2_batches(service, register, 5) == 3  # [1, 2], [3, 4], [5]


async def test_v2_batches_hold_200_requests_by_default() -> None:
    service = Service(lock=RecordingLock())

    assert await v2_batches(service, service.register, 201) == 2  # [1..200], [201]


class TestRecentStores:
    async def test_a_read_is_fresh_for_one_second_by_default_and_not_a_moment_longer(self) -> None:
        service = Service()
        store = await service.add_store(max_party_size=4)
        now = [1000.0]
        stores = RecentStores(service.uow_factory, clock=lambda: now[0])
        await stores.get(store.id)
        service.db.stores[store.id] = replace(service.db.stores[store.id], max_party_size=2)

        now[0] = 1000.999
        assert (await stores.get(store.id)).max_party_size == 4
        now[0] = 1001.0
        assert (await stores.get(store.id)).max_party_size == 2

    async def test_at_most_most_stores_are_kept(self) -> None:
        service = Service()
        ids = [(await service.add_store(name=f"Store {i}")).id for i in range(3)]
        opened = 0

        def counted() -> UnitOfWork:
            nonlocal opened
            opened += 1
            return service.uow_factory()

        stores = RecentStores(counted, most=2, clock=lambda: 0.0)
        for store_id in [*ids, ids[1]]:
            await stores.get(store_id)

        assert opened == 4  # the third store's read found two kept and began afresh

    async def test_ten_thousand_stores_are_kept_by_default(self) -> None:
        service = Service()
        for store_id in range(1, 10_002):
            service.db.stores[store_id] = Store(id=store_id, name=f"Store {store_id}")
        opened = 0

        def counted() -> UnitOfWork:
            nonlocal opened
            opened += 1
            return service.uow_factory()

        stores = RecentStores(counted, clock=lambda: 0.0)
        for store_id in [*range(1, 10_001), 1]:
            await stores.get(store_id)
        assert opened == 10_000  # all kept: the first is read once
        for store_id in [10_001, 1]:
            await stores.get(store_id)
        assert opened == 10_002  # the ten-thousand-and-first began afresh

    async def test_a_finished_read_leaves_the_event_loop_nothing_to_report(self) -> None:
        service = Service()
        store = await service.add_store()
        reported = loop_reports()

        await RecentStores(service.uow_factory).get(store.id)
        await asyncio.sleep(0)

        assert reported == []

    async def test_a_read_cancelled_at_shutdown_leaves_the_event_loop_nothing_to_report(self) -> None:
        service = Service()
        store = await service.add_store()
        gate = asyncio.Event()

        class Slow(MemoryUnitOfWork):
            async def __aenter__(self) -> Slow:
                await gate.wait()
                return await super().__aenter__()

        reported = loop_reports()
        getter = asyncio.create_task(RecentStores(lambda: Slow(service.db)).get(store.id))
        await asyncio.sleep(0.01)
        [read] = asyncio.all_tasks() - {getter, asyncio.current_task()}
        read.cancel()

        with pytest.raises(asyncio.CancelledError):
            await getter
        await asyncio.sleep(0)
        assert reported == []


def loop_reports() -> list[dict[str, Any]]:
    reported: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, context: reported.append(context))
    return reported


class BrokenStatuses(LocalRequestStatuses):
    """Statuses that live apart (Redis) and are away: `put` fails, `forget` too if asked."""

    def __init__(self, put_fails: bool = True, forget_fails: bool = False) -> None:
        super().__init__()
        self.put_fails, self.forget_fails = put_fails, forget_fails

    async def put(self, status: Any) -> None:
        if self.put_fails:
            raise RuntimeError("statuses away")
        await super().put(status)

    async def forget(self, trace_id: str) -> None:
        if self.forget_fails:
            raise RuntimeError("statuses away")
        await super().forget(trace_id)


class LateQueue(LocalRegistrationQueue):
    async def publish(self, request: RegistrationRequest) -> None:
        await super().publish(request)
        raise QueueUnavailable("no acknowledgement in time")


class GoneQueue(LocalRegistrationQueue):
    async def publish(self, request: RegistrationRequest) -> None:
        raise asyncio.CancelledError


@dataclass
class AwayDatabaseService(Service):
    """Stores are read fine, but nothing can be written."""

    def uow(self) -> UnitOfWork:
        return AwayUnitOfWork(self.db)


class AwayUnitOfWork(MemoryUnitOfWork):
    async def commit(self) -> None:
        raise RuntimeError("database away")


class TestSubmitWhenSomethingIsAway:
    async def test_statuses_away_is_logged_with_the_trace_id_and_the_request_still_queued(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        service = Service(statuses=BrokenStatuses())
        store = await service.add_store()
        request = user_request(store.id)

        status = await service.submit(request)

        assert status.state is RequestState.QUEUED
        assert await service.queue.pending(store.id) == [request]
        assert caplog.messages == [
            f"request {request.trace_id} accepted without a QUEUED status: RuntimeError('statuses away')"
        ]

    async def test_a_client_gone_mid_write_leaves_no_status_to_poll(self) -> None:
        service = Service(queue=GoneQueue())
        store = await service.add_store()
        request = user_request(store.id)

        with pytest.raises(asyncio.CancelledError):
            await service.submit(request)

        assert await service.statuses.get(request.trace_id) is None

    async def test_an_abandoned_request_leaves_no_status_to_poll(self) -> None:
        service = Service(queue=LateQueue())
        store = await service.add_store()
        request = user_request(store.id)

        with pytest.raises(QueueUnavailable):
            await service.submit(request)

        assert await service.statuses.get(request.trace_id) is None

    async def test_a_request_decided_before_its_write_timed_out_is_logged(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        service = Service(queue=LateQueue())
        store = await service.add_store()
        request = user_request(store.id)
        late = service.queue.publish

        async def decided_at_once(queued: RegistrationRequest) -> None:
            await service.process([queued])
            await late(queued)

        service.queue.publish = decided_at_once  # type: ignore[method-assign]

        await service.submit(request)

        assert caplog.messages == [f"request {request.trace_id} was decided although its queue write failed"]

    async def test_a_database_away_too_is_logged_and_still_answered_unavailable(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        service = AwayDatabaseService(queue=LateQueue(), statuses=BrokenStatuses(False, forget_fails=True))
        service.db.stores[1] = Store(id=1, name="Onion Bakery", waiting_open=True)
        request = user_request(1)

        with pytest.raises(QueueUnavailable):
            await service.submit(request)

        assert caplog.messages == [
            f"request {request.trace_id} not marked abandoned: RuntimeError('database away')"
        ]


@dataclass
class ConflictingService(Service):
    """Its first `conflicts` commits are refused, as when another writer got in."""

    conflicts: int = 0
    refused: list[int] = field(default_factory=list)

    def uow(self) -> UnitOfWork:
        return ConflictingUnitOfWork(self)


class ConflictingUnitOfWork(MemoryUnitOfWork):
    def __init__(self, service: ConflictingService) -> None:
        super().__init__(service.db)
        self._service = service

    async def commit(self) -> None:
        if self._service.conflicts:
            self._service.conflicts -= 1
            raise ConcurrencyConflict("another writer won")
        await super().commit()


class TestWorkerRetries:
    async def test_a_busy_store_is_logged_and_its_lock_waited_for_again(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, logger="application.registration")
        service = Service(lock=RecordingLock(timeouts=1))
        store = await service.add_store()

        [outcome] = await service.process([user_request(store.id)])

        assert outcome.state is RequestState.REGISTERED
        assert f"store {store.id} busy; waiting for its lock again" in caplog.messages

    async def test_a_raced_batch_is_logged_and_backs_off_longer_each_time(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        service = ConflictingService()
        store = await service.add_store()
        service.conflicts = 2
        loop = asyncio.get_running_loop()
        started = loop.time()

        [outcome] = await service.process([user_request(store.id)])

        elapsed = loop.time() - started
        assert outcome.state is RequestState.REGISTERED
        assert 0.15 <= elapsed < 1.0  # 0.05 s, then 0.10 s
        assert caplog.messages == [f"store {store.id} batch raced another writer; retrying"] * 2


async def test_requests_for_an_unknown_store_are_rejected_and_announce_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = Service()

    [outcome] = await service.process([user_request(404)])

    assert (outcome.state, outcome.reason) == (RequestState.REJECTED, "STORE_NOT_FOUND")
    assert caplog.messages == []  # no "live events not sent"


async def test_dead_letters_are_failed_with_their_reason_unless_already_decided() -> None:
    service = Service()
    store = await service.add_store()
    decided, dead = user_request(store.id, "u1"), user_request(store.id, "u2")
    await service.process([decided])

    await service.process.give_up([decided, dead], "poison message")

    assert (await service.statuses.get(decided.trace_id)).state is RequestState.REGISTERED  # type: ignore[union-attr]
    failed = await service.statuses.get(dead.trace_id)
    assert failed is not None and (failed.state, failed.reason) == (RequestState.FAILED, "poison message")
