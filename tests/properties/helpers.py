"""Concurrent registrations through the real use cases, interleaved the way hypothesis chooses.

`YieldingUnitOfWork` wraps a unit of work (memory, or PostgreSQL: see storage.py): each
repository call and each commit first yields to the event loop as often as the drawn schedule
says, so that one request's load and save can straddle another's. The memory adapter never
yields on its own, so without such a schedule asyncio would run the requests one after another
and prove nothing; PostgreSQL adds the real waits of a network round trip.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from hypothesis import strategies as st

from adapters.lock.local import LocalLock
from adapters.notify.local import LocalNotifier
from adapters.persistence.memory import MemoryDatabase
from adapters.queue.local import LocalRegistrationQueue
from adapters.status.local import LocalRequestStatuses
from application.announcements import Announcer
from application.guest_input import mobile_number
from application.ports import Lock, UnitOfWork
from application.registration import LockTimes, ProcessRegistrations, RegisterWaiting, SubmitRegistration
from application.requests import RegistrationRequest, RequestState, RequestStatus
from domain.customer import Channel
from domain.errors import DomainError
from domain.store import Store
from properties.storage import MemoryStorage, Storage
from unit.helpers import NOON_IN_SEOUL, SettableClock

MAX_PARTY_SIZE = 4
ADMISSION_REFUSALS = frozenset({"WAITING_CLOSED", "QUEUE_FULL", "ALREADY_WAITING", "VALIDATION_ERROR"})
USERS = 6
# Three guests who type their numbers in different ways: still one customer per number.
GUEST_SPELLINGS = [
    ["010-1111-0001", "01011110001", "+82 10-1111-0001"],
    ["010-2222-0002", "+82-10-2222-0002"],
    ["010-3333-0003"],
]


class Pauses:
    """The drawn schedule: how many times each successive storage call yields first.

    It repeats once used up, so that a short schedule still shapes a long burst; the empty
    schedule never yields, and the requests then run one after another.
    """

    def __init__(self, counts: Sequence[int]) -> None:
        self._counts: Iterator[int] = itertools.cycle(counts or [0])

    async def __call__(self) -> None:
        for _ in range(next(self._counts, 0)):
            await asyncio.sleep(0)


class _Yielding:
    def __init__(self, repository: object, pauses: Pauses) -> None:
        self._repository, self._pauses = repository, pauses

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._repository, name)

        async def paused(*args: Any, **kwargs: Any) -> Any:
            await self._pauses()
            return await method(*args, **kwargs)

        return paused


class YieldingUnitOfWork:
    """A unit of work, with the schedule's pauses before every storage call and commit."""

    stores: Any
    waitings: Any
    requests: Any

    def __init__(self, inner: UnitOfWork, pauses: Pauses) -> None:
        self._inner, self._pauses = inner, pauses

    async def __aenter__(self) -> Self:
        await self._inner.__aenter__()
        self.stores = _Yielding(self._inner.stores, self._pauses)
        self.waitings = _Yielding(self._inner.waitings, self._pauses)
        self.requests = _Yielding(self._inner.requests, self._pauses)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._inner.__aexit__(exc_type, exc, tb)

    async def commit(self) -> None:
        await self._pauses()
        await self._inner.commit()


class NoLock:
    """Takes no lock at all: what RegisterWaiting would be without the store's lock. Every holder
    gets the same fencing token, so fencing (which orders holders, it does not exclude them) lets
    them all write."""

    @asynccontextmanager
    async def hold(self, key: str, *, wait_time: float, lease_time: float | None) -> AsyncIterator[int]:
        yield 1


@dataclass(frozen=True)
class StoreSettings:
    waiting_open: bool = True
    max_queue_size: int | None = None


@dataclass(frozen=True)
class Ask:
    """One customer's request: which store, who, how many, and when it arrives."""

    store: int
    customer: int
    party_size: int = 2
    delay: int = 0
    spelling: int = 0
    redelivered: bool = False


@dataclass(frozen=True)
class Scenario:
    stores: tuple[StoreSettings, ...]
    asks: tuple[Ask, ...]
    schedule: tuple[int, ...] = ()
    partitions: int = 2
    batch_size: int = 3
    # The most one transaction of the worker decides: below batch_size, a batch is decided in
    # parts, as a pipeline (application/pipeline.py).
    part_size: int = 1000


CUSTOMERS = USERS + len(GUEST_SPELLINGS)


def store_settings() -> st.SearchStrategy[StoreSettings]:
    return st.builds(
        StoreSettings,
        waiting_open=st.sampled_from([True, True, True, True, False]),
        max_queue_size=st.none() | st.integers(1, 12),
    )


def schedules(max_size: int = 150) -> st.SearchStrategy[tuple[int, ...]]:
    return st.lists(st.integers(0, 4), max_size=max_size).map(tuple)


@st.composite
def scenarios(draw: st.DrawFn, *, stores: int = 1, requests: int = 20, redelivery: bool = False) -> Scenario:
    store_list = draw(st.lists(store_settings(), min_size=1, max_size=stores))
    asks = st.builds(
        Ask,
        store=st.integers(0, len(store_list) - 1),
        customer=st.integers(0, CUSTOMERS - 1),
        # Mostly valid, so that numbers are given out; now and then one too many.
        party_size=st.sampled_from([1, 2, 2, 3, 4, MAX_PARTY_SIZE + 1]),
        delay=st.integers(0, 12),
        spelling=st.integers(0, 2),
        redelivered=st.booleans() if redelivery else st.just(False),
    )
    return Scenario(
        stores=tuple(store_list),
        asks=tuple(draw(st.lists(asks, min_size=2, max_size=requests))),
        schedule=draw(schedules()),
        partitions=draw(st.integers(1, 3)),
        batch_size=draw(st.integers(1, 6)),
        part_size=draw(st.sampled_from([1, 2, 1000])),
    )


def request_of(ask: Ask, index: int, store_ids: Sequence[int]) -> RegistrationRequest:
    store_id = store_ids[ask.store]
    common = {"trace_id": f"trace-{index}", "store_id": store_id, "party_size": ask.party_size}
    if ask.customer < USERS:
        return RegistrationRequest(
            channel=Channel.USER, requested_at=NOON_IN_SEOUL, user_id=f"u{ask.customer}", **common
        )
    spellings = GUEST_SPELLINGS[ask.customer - USERS]
    return RegistrationRequest(
        channel=Channel.APP,
        requested_at=NOON_IN_SEOUL,
        name=["김민수", "Minsu", "이영희"][ask.spelling],
        phone_number=mobile_number(spellings[ask.spelling % len(spellings)]),
        **common,
    )


@dataclass
class Attempt:
    """What one caller saw: logical start and end, then a number, a refusal or a failure."""

    request: RegistrationRequest
    started: int = -1
    ended: int = -1
    number: int | None = None
    refusal: str | None = None
    failure: BaseException | None = None
    accepted: bool = False


@dataclass
class Run:
    db: MemoryDatabase
    settings: dict[int, StoreSettings]
    attempts: list[Attempt]
    deliveries: dict[str, list[RequestStatus]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, RequestStatus | None] = field(default_factory=dict)
    dead_letters: list[RegistrationRequest] = field(default_factory=list)
    worker_warnings: list[str] = field(default_factory=list)


class _Warnings(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self._into = into

    def emit(self, record: logging.LogRecord) -> None:
        self._into.append(record.getMessage())


class World:
    def __init__(self, scenario: Scenario, storage: Storage) -> None:
        self.scenario, self.storage = scenario, storage
        self.pauses = Pauses(scenario.schedule)
        self.clock = SettableClock()
        self.notifier = LocalNotifier()
        self.ticks = itertools.count()
        self.settings: dict[int, StoreSettings] = {}
        self.stores: list[Store] = []
        self.attempts: list[Attempt] = []

    @asynccontextmanager
    async def opened(self) -> AsyncIterator[Self]:
        """The stores made, the attempts drawn; the storage closed after the run."""
        await self.storage.open()
        try:
            for settings in self.scenario.stores:
                store = Store(
                    id=0,
                    name="Onion Bakery",
                    waiting_open=settings.waiting_open,
                    max_party_size=MAX_PARTY_SIZE,
                    max_queue_size=settings.max_queue_size,
                )
                await self.storage.add(store)
                self.stores.append(store)
                self.settings[store.id] = settings
            store_ids = list(self.settings)
            asks = self.scenario.asks
            self.attempts = [Attempt(request_of(ask, i, store_ids)) for i, ask in enumerate(asks)]
            yield self
        finally:
            await self.storage.close()

    async def run(self) -> Run:
        trace_ids = [attempt.request.trace_id for attempt in self.attempts]
        db = await self.storage.contents(self.stores, trace_ids, self.clock.now())
        return Run(db, self.settings, self.attempts)

    def uow(self) -> UnitOfWork:
        return YieldingUnitOfWork(self.storage.unit_of_work(), self.pauses)

    @property
    def announcer(self) -> Announcer:
        return Announcer(self.notifier, self.uow)

    async def arrive(self, ask: Ask, attempt: Attempt) -> None:
        for _ in range(ask.delay):
            await asyncio.sleep(0)
        attempt.started = next(self.ticks)


PROCESSES = 2


async def register_concurrently(
    scenario: Scenario, lock: Lock | None = None, storage: Storage | None = None
) -> Run:
    """V2: every request calls RegisterWaiting at once, as a burst of HTTP requests over `PROCESSES`
    API processes would."""
    async with World(scenario, storage or MemoryStorage()).opened() as world:
        await _register_all(world, lock or LocalLock())
        return await world.run()


async def _register_all(world: World, lock: Lock) -> None:
    scenario = world.scenario
    nothing_queued = LocalRegistrationQueue()
    queued = ProcessRegistrations(
        world.uow, lock, world.clock, LocalRequestStatuses(), world.announcer, LockTimes()
    )
    # Two API processes, the requests alternating between them: within one, a store's requests
    # are combined into batches; between them, only the lock keeps the batches apart.
    processes = [
        RegisterWaiting(world.uow, lock, world.clock, world.announcer, LockTimes(), nothing_queued, queued)
        for _ in range(PROCESSES)
    ]

    async def one(index: int, ask: Ask, attempt: Attempt) -> None:
        await world.arrive(ask, attempt)
        try:
            view = await processes[index % PROCESSES](attempt.request)
            attempt.number, attempt.accepted = view["number"], True
        except DomainError as refusal:
            attempt.refusal = refusal.code
        except Exception as failure:
            attempt.failure = failure
        attempt.ended = next(world.ticks)

    await asyncio.gather(
        *(
            one(index, ask, attempt)
            for index, (ask, attempt) in enumerate(zip(scenario.asks, world.attempts, strict=True))
        )
    )


async def queue_concurrently(scenario: Scenario, storage: Storage | None = None) -> Run:
    """V3: every request is submitted at once; a worker decides them; some are delivered twice."""
    async with World(scenario, storage or MemoryStorage()).opened() as world:
        return await _queue_all(world)


async def _queue_all(world: World) -> Run:
    scenario = world.scenario
    statuses = LocalRequestStatuses()
    queue = LocalRegistrationQueue(partitions=scenario.partitions, batch_size=scenario.batch_size, attempts=1)
    process = ProcessRegistrations(
        world.uow, LocalLock(), world.clock, statuses, world.announcer, LockTimes(), most=scenario.part_size
    )
    submit = SubmitRegistration(world.uow, queue, statuses)
    deliveries: dict[str, list[RequestStatus]] = defaultdict(list)
    worker_warnings: list[str] = []

    async def worker(batch: Sequence[RegistrationRequest]) -> None:
        for outcome in await process(batch):
            deliveries[outcome.trace_id].append(outcome)

    async def one(ask: Ask, attempt: Attempt) -> None:
        await world.arrive(ask, attempt)
        try:
            await submit(attempt.request)
            attempt.accepted = True
        except DomainError as refusal:
            attempt.refusal = refusal.code
        except Exception as failure:
            attempt.failure = failure
        attempt.ended = next(world.ticks)
        if attempt.accepted and ask.redelivered:
            # The broker hands the same message to the worker again, as after a lost acknowledgement.
            await world.pauses()
            await queue.publish(attempt.request)

    # Under the lock the worker must never race another writer; it would log and retry quietly.
    worker_log = logging.getLogger(ProcessRegistrations.__module__)
    warnings = _Warnings(worker_warnings)
    worker_log.addHandler(warnings)
    await queue.start(worker)
    try:
        await asyncio.gather(
            *(one(ask, attempt) for ask, attempt in zip(scenario.asks, world.attempts, strict=True))
        )
        await queue.stop()
    finally:
        worker_log.removeHandler(warnings)
    run = await world.run()
    run.deliveries, run.worker_warnings = deliveries, worker_warnings
    run.dead_letters = await queue.dead_letters()
    for attempt in run.attempts:
        run.statuses[attempt.request.trace_id] = await statuses.get(attempt.request.trace_id)
        outcome = run.db.requests.get(attempt.request.trace_id)
        if outcome is not None and outcome.state is RequestState.REGISTERED:
            attempt.number = run.db.waitings[outcome.waiting_id or 0].number
        elif outcome is not None:
            attempt.refusal = outcome.reason
    return run


def violations(run: Run) -> list[str]:
    """Every rule of DOMAIN.md that concurrency could break, as readable complaints."""
    found: list[str] = []
    waitings = list(run.db.waitings.values())
    for attempt in run.attempts:
        if attempt.failure is not None:
            found.append(f"{attempt.request.trace_id} failed with {attempt.failure!r}")
        elif attempt.number is None and attempt.refusal not in ADMISSION_REFUSALS:
            found.append(f"{attempt.request.trace_id} neither registered nor refused: {attempt.refusal}")

    by_day: dict[tuple[int, object], list[int]] = defaultdict(list)
    for waiting in waitings:
        by_day[waiting.store_id, waiting.business_date].append(waiting.number)
    for (store_id, day), numbers in by_day.items():
        if sorted(numbers) != list(range(1, len(numbers) + 1)):
            found.append(f"store {store_id} on {day} has numbers {sorted(numbers)}")

    registered = [a for a in run.attempts if a.number is not None]
    if sorted((w.store_id, w.number) for w in waitings) != sorted(
        (a.request.store_id, a.number) for a in registered
    ):
        found.append("the numbers callers were told differ from the stored ones")

    for earlier in registered:
        for later in registered:
            same_store = earlier.request.store_id == later.request.store_id
            if same_store and earlier.ended < later.started and earlier.number >= later.number:  # type: ignore[operator]
                found.append(
                    f"FIFO: {earlier.request.trace_id} finished before {later.request.trace_id} began "
                    f"but got {earlier.number} >= {later.number}"
                )

    active = [(w.store_id, w.business_date, w.customer.key) for w in waitings if w.status.active]
    if len(active) != len(set(active)):
        found.append(f"a customer holds two active waitings: {sorted(active)}")

    found.extend(_admission_violations(run, registered))
    return found


def _admission_violations(run: Run, registered: list[Attempt]) -> list[str]:
    """With nobody leaving, each valid customer of an open store gets one number until the list is full."""
    found: list[str] = []
    for store_id, settings in run.settings.items():
        mine = [a for a in run.attempts if a.request.store_id == store_id]
        valid = {a.request.customer.key for a in mine if 1 <= a.request.party_size <= MAX_PARTY_SIZE}
        expected = min(len(valid), settings.max_queue_size or len(valid)) if settings.waiting_open else 0
        got = sum(1 for a in registered if a.request.store_id == store_id)
        if got != expected:
            found.append(f"store {store_id} registered {got} customers, expected {expected}")
    return found


def queue_violations(run: Run, scenario: Scenario) -> list[str]:
    """V3's own promises: each traceId decided once, every delivery told that one outcome."""
    found: list[str] = []
    if run.dead_letters:
        found.append(f"{len(run.dead_letters)} requests ended in the dead letters")
    found.extend(f"the worker warned: {warning}" for warning in run.worker_warnings)
    traces = [w.trace_id for w in run.db.waitings.values()]
    if len(traces) != len(set(traces)):
        found.append("a traceId was registered twice")
    for ask, attempt in zip(scenario.asks, run.attempts, strict=True):
        trace_id = attempt.request.trace_id
        logged, deliveries = run.db.requests.get(trace_id), run.deliveries.get(trace_id, [])
        if not attempt.accepted:
            if logged is not None or deliveries:
                found.append(f"{trace_id} was refused at submission yet decided by the worker")
            continue
        expected_deliveries = 2 if ask.redelivered else 1
        if len(deliveries) != expected_deliveries or any(d != logged for d in deliveries):
            found.append(f"{trace_id}: deliveries {deliveries} disagree with the log's {logged}")
        if logged is None or run.statuses.get(trace_id) != logged:
            found.append(f"{trace_id}: status {run.statuses.get(trace_id)} is not the logged {logged}")
        elif logged.state is RequestState.REGISTERED:
            waiting = run.db.waitings.get(logged.waiting_id or 0)
            if waiting is None or waiting.trace_id != trace_id:
                found.append(f"{trace_id}: registered as a waiting that is not its own")
    return found
