"""What the unit tests share: a settable clock, the embedded adapters wired to the use cases, builders."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from adapters.lock.local import LocalLock
from adapters.notify.local import LocalNotifier
from adapters.persistence.memory import MemoryDatabase, MemoryUnitOfWork
from adapters.queue.local import LocalRegistrationQueue
from adapters.status.local import LocalRequestStatuses
from application.access import Actor, Role
from application.announcements import Announcer
from application.ports import Event, UnitOfWork, UnitOfWorkFactory
from application.queries import Queries
from application.registration import (
    LockTimes,
    ProcessRegistrations,
    RegisterWaiting,
    SubmitRegistration,
)
from application.requests import RegistrationRequest
from application.stores import SwitchWaiting
from application.waiting_actions import MoveWaiting
from domain.customer import Channel, Customer
from domain.store import Store
from domain.waiting import Waiting

# 11:00 in Seoul: well inside one business day, whichever way a test moves the clock by hours.
NOON_IN_SEOUL = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def a_waiting(**overrides: object) -> Waiting:
    """Number 1 of store 7 on 2 March 2026, WAITING, for customer u1: a domain object, not stored."""
    fields: dict[str, object] = {
        "id": 1,
        "store_id": 7,
        "business_date": date(2026, 3, 2),
        "number": 1,
        "customer": Customer.user("u1"),
        "party_size": 2,
        "trace_id": "t",
        "status_token": "token",
        "created_at": NOON_IN_SEOUL,
    }
    return Waiting(**(fields | overrides))  # type: ignore[arg-type]


PHONE = "+821012345678"

_trace_ids = itertools.count(1)


class SettableClock:
    def __init__(self, moment: datetime = NOON_IN_SEOUL) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment

    def set(self, moment: datetime) -> None:
        self.moment = moment

    def advance(self, by: timedelta) -> None:
        self.moment += by


def customer(user_id: str = "u1") -> Actor:
    return Actor(Role.CUSTOMER, user_id)


def staff(store_id: int) -> Actor:
    return Actor(Role.STORE, f"staff-{store_id}", store_id)


ADMIN = Actor(Role.ADMIN, "admin")


def next_trace_id() -> str:
    return f"trace-{next(_trace_ids)}"


def user_request(
    store_id: int, user_id: str = "u1", party_size: int = 2, trace_id: str | None = None
) -> RegistrationRequest:
    return RegistrationRequest(
        trace_id=trace_id or next_trace_id(),
        store_id=store_id,
        channel=Channel.USER,
        party_size=party_size,
        requested_at=NOON_IN_SEOUL,
        user_id=user_id,
    )


def guest_request(
    store_id: int,
    phone_number: str = PHONE,
    name: str = "김민수",
    party_size: int = 2,
    trace_id: str | None = None,
) -> RegistrationRequest:
    """The phone number must already be normalised, as `NewRequests.for_guest` leaves it."""
    return RegistrationRequest(
        trace_id=trace_id or next_trace_id(),
        store_id=store_id,
        channel=Channel.APP,
        party_size=party_size,
        requested_at=NOON_IN_SEOUL,
        name=name,
        phone_number=phone_number,
    )


@dataclass
class Service:
    """The use cases on the embedded adapters, as the composition root wires them."""

    db: MemoryDatabase = field(default_factory=MemoryDatabase)
    clock: SettableClock = field(default_factory=SettableClock)
    lock: LocalLock = field(default_factory=LocalLock)
    notifier: LocalNotifier = field(default_factory=LocalNotifier)
    statuses: LocalRequestStatuses = field(default_factory=LocalRequestStatuses)
    queue: LocalRegistrationQueue = field(default_factory=LocalRegistrationQueue)
    lock_times: LockTimes = field(default_factory=LockTimes)

    def uow(self) -> UnitOfWork:
        return MemoryUnitOfWork(self.db)

    @property
    def uow_factory(self) -> UnitOfWorkFactory:
        return self.uow

    @property
    def announcer(self) -> Announcer:
        return Announcer(self.notifier, self.uow_factory)

    @property
    def register(self) -> RegisterWaiting:
        return RegisterWaiting(
            self.uow_factory, self.lock, self.clock, self.announcer, self.lock_times, self.queue, self.process
        )

    @property
    def submit(self) -> SubmitRegistration:
        return SubmitRegistration(self.uow_factory, self.queue, self.statuses)

    @property
    def process(self) -> ProcessRegistrations:
        return ProcessRegistrations(
            self.uow_factory, self.lock, self.clock, self.statuses, self.announcer, self.lock_times
        )

    @property
    def move(self) -> MoveWaiting:
        return MoveWaiting(self.uow_factory, self.clock, self.announcer)

    @property
    def switch(self) -> SwitchWaiting:
        return SwitchWaiting(self.uow_factory, self.clock, self.announcer)

    @property
    def queries(self) -> Queries:
        return Queries(self.uow_factory, self.clock, self.statuses)

    async def add_store(
        self, name: str = "Onion Bakery", *, waiting_open: bool = True, **settings: object
    ) -> Store:
        store = Store(id=0, name=name, waiting_open=waiting_open, **settings)  # type: ignore[arg-type]
        async with self.uow() as uow:
            await uow.stores.add(store)
            await uow.commit()
        return store

    def waiting_numbers(self, store_id: int) -> list[int]:
        return sorted(w.number for w in self.db.waitings.values() if w.store_id == store_id)


async def published(notifier: LocalNotifier, stream: str) -> list[Event]:
    """Everything a stream has carried so far, as a client resuming from its start would get it."""
    async with notifier.subscribe(stream, "0") as subscription:
        return list(subscription.missed or [])


async def event_types(notifier: LocalNotifier, stream: str) -> list[str]:
    return [event.type for event in await published(notifier, stream)]
