"""V2, V3, store actions and a midnight at once: every attempt gets exactly the outcome DOMAIN.md gives it.

Hypothesis draws one or two stores (some closed, some with a small maxQueueSize) and two groups
of operations from a small pool of customers: V2 registrations, V3 submissions, store actions
(call, seat, cancel, no-show of a waiting that exists by then; open, close). Each group runs at
once (asyncio.gather, the real lock, the real use cases, on memory and on PostgreSQL), with the
drawn pauses before each storage call; between the groups the clock passes the store's day start
(local midnight in Seoul), while V3 requests of the first group may still be queued.

How the order of decisions is recorded. Every unit of work goes through `JournaledUnitOfWork`,
which gives each read a decision rests on (the store row, the day's list, a waiting to move) and
each commit a tick from one counter, taken inside a small gate that no other such read or commit
shares: PostgreSQL never blocks a plain SELECT or a COMMIT on a row lock, so the gate cannot
deadlock, and a read then sees exactly the commits with smaller ticks. The list it loads is
handed back as a `_DecidingList`, whose `register` notes each decision the domain makes (a
number or a refusal code) in the order it makes them, a V3 batch's one after another. Decisions
count once they are final: at the commit that stores them, or, for a V2 refusal (nothing to
store), as the domain's own exception leaves the unit of work; a decision whose commit failed
is dropped. Registrations are totally ordered per store by the lock; store actions take no lock,
so the model places each fact where the use case read it.

The model (pure, `_Model`) replays the journal tick by tick: commits change its state (new
waitings, statuses, the open flag), and each registration is decided on the facts it had: the
open flag as of its store read, the day's list as of its list read (plus the batch's earlier
decisions), by DOMAIN.md's rules in their order (VALIDATION_ERROR, WAITING_CLOSED,
ALREADY_WAITING, QUEUE_FULL; "active" means WAITING or CALLED of that business day). Each caller's
actual outcome must equal the model's; a registration's list must not have moved between its read
and its commit (the lock makes decisions sequential); each traceId is decided exactly once; V3
requests are decided before any V2 request that arrived after their 202; and what storage holds
(numbers 1..n per store and day, one active waiting per customer, every status) equals the model.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import Any, Self
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from adapters.lock.local import LocalLock
from adapters.notify.local import LocalNotifier
from adapters.persistence.sql import SqlUnitOfWork
from adapters.queue.local import LocalRegistrationQueue
from adapters.status.local import LocalRequestStatuses
from application.announcements import Announcer
from application.ports import Lock, UnitOfWork
from application.registration import LockTimes, ProcessRegistrations, RegisterWaiting, SubmitRegistration
from application.requests import RegistrationRequest, RequestState, RequestStatus
from application.stores import SwitchWaiting
from application.waiting_actions import MoveWaiting
from domain.errors import DomainError
from domain.store import Store
from domain.waiting import Waiting, WaitingStatus
from domain.waiting_list import WaitingList
from properties.helpers import (
    MAX_PARTY_SIZE,
    USERS,
    Ask,
    NoLock,
    Pauses,
    StoreSettings,
    request_of,
    schedules,
)
from properties.kept import kept_differences
from properties.storage import MemoryStorage, PostgresStorage, Storage, StorageFactory
from unit.helpers import SettableClock, staff

SEOUL = ZoneInfo("Asia/Seoul")
BEFORE_MIDNIGHT = datetime(2026, 3, 2, 14, 58, tzinfo=UTC)  # 23:58 in Seoul
AFTER_MIDNIGHT = BEFORE_MIDNIGHT + timedelta(minutes=4)  # 00:02 of the next business day
DAYS = (date(2026, 3, 2), date(2026, 3, 3))
# Three users and two guests (who spell their numbers in several ways): ALREADY_WAITING happens.
CUSTOMER_POOL = (0, 1, 2, USERS, USERS + 1)
MOVES = ("call", "seat", "cancel", "no_show")
ALLOWED = {
    (WaitingStatus.WAITING, "call"): WaitingStatus.CALLED,
    (WaitingStatus.CALLED, "seat"): WaitingStatus.SEATED,
    (WaitingStatus.WAITING, "cancel"): WaitingStatus.CANCELLED,
    (WaitingStatus.CALLED, "cancel"): WaitingStatus.CANCELLED,
    (WaitingStatus.CALLED, "no_show"): WaitingStatus.NO_SHOW,
}
ACTIVE = (WaitingStatus.WAITING, WaitingStatus.CALLED)


# --- Scenarios ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    """One caller: a registration ("v2", "v3"), a move of an existing waiting, or a switch."""

    kind: str
    store: int
    customer: int = 0
    spelling: int = 0
    party_size: int = 2
    target: int = 0
    delay: int = 0


@dataclass(frozen=True)
class Mixed:
    stores: tuple[StoreSettings, ...]
    before: tuple[Op, ...]
    after: tuple[Op, ...]
    schedule: tuple[int, ...] = ()
    partitions: int = 2
    batch_size: int = 3


@st.composite
def mixed(draw: st.DrawFn, *, most_stores: int = 2, most_ops: int = 24) -> Mixed:
    stores = draw(
        st.lists(
            st.builds(
                StoreSettings,
                waiting_open=st.sampled_from([True, True, True, True, False]),
                max_queue_size=st.sampled_from([None, 1, 2, 2, 3]),
            ),
            min_size=1,
            max_size=most_stores,
        )
    )
    store, delay = st.integers(0, len(stores) - 1), st.integers(0, 8)
    registration = st.builds(
        Op,
        kind=st.sampled_from(["v2", "v3"]),
        store=store,
        customer=st.sampled_from(CUSTOMER_POOL),
        spelling=st.integers(0, 2),
        party_size=st.sampled_from([1, 2, 2, 3, 2, MAX_PARTY_SIZE + 1]),
        delay=delay,
    )
    move = st.builds(Op, kind=st.sampled_from(MOVES), store=store, target=st.integers(0, 7), delay=delay)
    switch = st.builds(Op, kind=st.sampled_from(["open", "open", "close"]), store=store, delay=delay)
    ops = draw(
        st.lists(
            st.one_of(*[registration] * 5, move, move, switch),
            min_size=5,
            max_size=most_ops,
        )
    )
    # Both groups mostly get operations: the midnight falls among them, not before or after all.
    split = draw(st.integers(len(ops) // 3, len(ops) - len(ops) // 3))
    return Mixed(
        stores=tuple(stores),
        before=tuple(ops[:split]),
        after=tuple(ops[split:]),
        schedule=draw(schedules(60)),
        partitions=draw(st.integers(1, 2)),
        batch_size=draw(st.integers(1, 4)),
    )


# --- What each caller saw ----------------------------------------------------------------------


@dataclass
class Attempt:
    op: Op
    index: int
    store_id: int
    request: RegistrationRequest | None = None
    started: int = -1
    ended: int = -1
    number: int | None = None
    refusal: str | None = None
    failure: BaseException | None = None
    accepted: bool = False
    waiting_id: int | None = None
    skipped: bool = False

    @property
    def name(self) -> str:
        return f"#{self.index} {self.op.kind}@{self.op.store}"

    @property
    def outcome(self) -> int | str | None:
        return self.number if self.number is not None else self.refusal


CURRENT: ContextVar[Attempt | None] = ContextVar("CURRENT", default=None)


# --- The journal -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    trace_id: str
    waiting: Waiting | None
    error: DomainError | None

    @property
    def outcome(self) -> int | str:
        return self.waiting.number if self.waiting is not None else self.error.code  # type: ignore[union-attr]


@dataclass(frozen=True)
class StoreRead:
    tick: int
    uow: int
    store_id: int


@dataclass(frozen=True)
class ListRead:
    tick: int
    uow: int
    store_id: int
    day: date
    clock_read: datetime


@dataclass(frozen=True)
class WaitingRead:
    tick: int
    uow: int
    attempt: Attempt | None
    waiting_id: int


@dataclass(frozen=True)
class Final:
    """Decisions and changes that took effect: a commit, or a V2 refusal leaving its unit of work."""

    tick: int
    uow: int
    committed: bool
    decisions: tuple[Decision, ...]
    switched: tuple[tuple[int, bool], ...] = ()
    moved: tuple[tuple[int, WaitingStatus, WaitingStatus], ...] = ()
    attempt: Attempt | None = None


Event = StoreRead | ListRead | WaitingRead | Final


class JournalClock(SettableClock):
    """The settable clock, remembering the last moment it told (the one a decision used)."""

    last_read: datetime = BEFORE_MIDNIGHT

    def now(self) -> datetime:
        self.last_read = super().now()
        return self.last_read


@dataclass
class Journal:
    clock: JournalClock
    events: list[Event] = field(default_factory=list)
    gate: asyncio.Lock = field(default_factory=asyncio.Lock)
    ticks: Iterator[int] = field(default_factory=itertools.count)
    uows: Iterator[int] = field(default_factory=itertools.count)

    def tick(self) -> int:
        return next(self.ticks)


class _Passing:
    """A repository with the schedule's pauses before each call; `_Stores`, `_Waitings` add a journal."""

    def __init__(self, uow: JournaledUnitOfWork, inner: Any) -> None:
        self._uow, self._inner = uow, inner

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._inner, name)

        async def paused(*args: Any, **kwargs: Any) -> Any:
            await self._uow.pauses()
            return await method(*args, **kwargs)

        return paused


class _Stores(_Passing):
    async def get(self, store_id: int) -> Store | None:
        await self._uow.pauses()
        journal = self._uow.journal
        async with journal.gate:
            store: Store | None = await self._inner.get(store_id)
            journal.events.append(StoreRead(journal.tick(), self._uow.key, store_id))
        return store

    async def save(self, store: Store) -> None:
        await self._uow.pauses()
        await self._inner.save(store)
        self._uow.switched.append((store.id, store.waiting_open))


class _Waitings(_Passing):
    async def load_list(self, store: Store, business_date: date, customers: Any) -> WaitingList:
        # Nothing runs between the use case's clock read and this call: it is the decision's moment.
        journal, clock_read = self._uow.journal, self._uow.journal.clock.last_read
        await self._uow.pauses()
        async with journal.gate:
            loaded = await self._inner.load_list(store, business_date, customers)
            journal.events.append(
                ListRead(journal.tick(), self._uow.key, store.id, business_date, clock_read)
            )
        return _DecidingList(loaded, self._uow)

    async def get(self, waiting_id: int) -> Waiting | None:
        await self._uow.pauses()
        journal = self._uow.journal
        async with journal.gate:
            waiting: Waiting | None = await self._inner.get(waiting_id)
            journal.events.append(WaitingRead(journal.tick(), self._uow.key, self._uow.attempt, waiting_id))
        return waiting

    async def save(self, waiting: Waiting, was: WaitingStatus) -> None:
        await self._uow.pauses()
        await self._inner.save(waiting, was)
        assert waiting.id is not None
        self._uow.moved.append((waiting.id, was, waiting.status))


class _DecidingList(WaitingList):
    """The day's list as loaded; each decision the domain makes on it is noted, in its order."""

    def __init__(self, loaded: WaitingList, uow: JournaledUnitOfWork) -> None:
        super().__init__(**{f.name: getattr(loaded, f.name) for f in fields(loaded)})
        self._uow = uow

    def register(self, registration: Any, now: datetime) -> Waiting:
        try:
            waiting = super().register(registration, now)
        except DomainError as refusal:
            self._uow.decisions.append(Decision(registration.trace_id, None, refusal))
            raise
        self._uow.decisions.append(Decision(registration.trace_id, waiting, None))
        return waiting


class JournaledUnitOfWork:
    stores: Any
    waitings: Any
    requests: Any

    def __init__(self, inner: UnitOfWork, pauses: Pauses, journal: Journal) -> None:
        self._inner, self.pauses, self.journal = inner, pauses, journal
        self.key = next(journal.uows)
        self.attempt: Attempt | None = None
        self.decisions: list[Decision] = []
        self.switched: list[tuple[int, bool]] = []
        self.moved: list[tuple[int, WaitingStatus, WaitingStatus]] = []

    async def __aenter__(self) -> Self:
        await self._inner.__aenter__()
        self.attempt = CURRENT.get()
        self.stores = _Stores(self, self._inner.stores)
        self.waitings = _Waitings(self, self._inner.waitings)
        self.requests = _Passing(self, self._inner.requests)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc is not None and self.decisions and self.decisions[-1].error is exc:
                # A V2 refusal: final as the domain raises it, nothing to store.
                final = Final(self.journal.tick(), self.key, False, (self.decisions[-1],))
                self.journal.events.append(final)
        finally:
            await self._inner.__aexit__(exc_type, exc, tb)

    async def commit(self) -> None:
        await self.pauses()
        journal = self.journal
        async with journal.gate:
            await self._inner.commit()
            journal.events.append(
                Final(
                    journal.tick(),
                    self.key,
                    True,
                    tuple(self.decisions),
                    tuple(self.switched),
                    tuple(self.moved),
                    self.attempt,
                )
            )
        self.decisions, self.switched, self.moved = [], [], []


# --- Running a scenario ------------------------------------------------------------------------


@dataclass
class Play:
    attempts: list[Attempt]
    events: list[Event]
    stores: dict[int, StoreSettings]
    waitings: list[Waiting]
    requests: dict[str, RequestStatus]
    dead_letters: int
    worker_warnings: list[str]
    kept: list[str]  # where the storage's kept counts or ranks differ from a recount of its rows


class _Warnings(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


async def play(scenario: Mixed, storage: Storage, lock: Lock | None = None) -> Play:
    await storage.open()
    try:
        return await _play(scenario, storage, lock or LocalLock())
    finally:
        await storage.close()


async def _play(scenario: Mixed, storage: Storage, lock: Lock) -> Play:
    clock = JournalClock(BEFORE_MIDNIGHT)
    journal, pauses = Journal(clock), Pauses(scenario.schedule)
    settings_of: dict[int, StoreSettings] = {}
    for wanted in scenario.stores:
        store = Store(
            id=0,
            name="Onion Bakery",
            waiting_open=wanted.waiting_open,
            max_party_size=MAX_PARTY_SIZE,
            max_queue_size=wanted.max_queue_size,
        )
        await storage.add(store)
        settings_of[store.id] = wanted
    store_ids = list(settings_of)

    def uow() -> UnitOfWork:
        return JournaledUnitOfWork(storage.unit_of_work(), pauses, journal)

    announcer = Announcer(LocalNotifier(), uow)
    queue = LocalRegistrationQueue(partitions=scenario.partitions, batch_size=scenario.batch_size, attempts=1)
    process = ProcessRegistrations(uow, lock, clock, LocalRequestStatuses(), announcer, LockTimes())
    register = RegisterWaiting(uow, lock, clock, announcer, LockTimes(), queue, process)
    submit = SubmitRegistration(uow, queue, LocalRequestStatuses())
    move, switch = MoveWaiting(uow, clock, announcer), SwitchWaiting(uow, clock, announcer)

    attempts: list[Attempt] = []
    for index, op in enumerate(scenario.before + scenario.after):
        attempt = Attempt(op, index, store_ids[op.store])
        if op.kind in ("v2", "v3"):
            ask = Ask(store=op.store, customer=op.customer, party_size=op.party_size, spelling=op.spelling)
            attempt.request = request_of(ask, index, store_ids)
        attempts.append(attempt)

    async def one(attempt: Attempt) -> None:
        CURRENT.set(attempt)
        op = attempt.op
        for _ in range(op.delay):
            await asyncio.sleep(0)
        attempt.started = journal.tick()
        try:
            if op.kind == "v2":
                assert attempt.request is not None
                attempt.number = (await register(attempt.request))["number"]
            elif op.kind == "v3":
                assert attempt.request is not None
                await submit(attempt.request)
                attempt.accepted = True
            elif op.kind in MOVES:
                attempt.waiting_id = await _target(storage, attempt.store_id, op.target)
                if attempt.waiting_id is None:
                    attempt.skipped = True
                else:
                    await move.by_store(
                        staff(attempt.store_id), attempt.store_id, attempt.waiting_id, op.kind
                    )
            else:
                await switch(staff(attempt.store_id), attempt.store_id, open_=op.kind == "open")
        except DomainError as refusal:
            attempt.refusal = refusal.code
        except Exception as failure:
            attempt.failure = failure
        attempt.ended = journal.tick()

    async def worker(batch: Sequence[RegistrationRequest]) -> None:
        await process(batch)

    warnings: list[str] = []
    handler = _Warnings(warnings)
    worker_log = logging.getLogger(ProcessRegistrations.__module__)
    worker_log.addHandler(handler)
    await queue.start(worker)
    try:
        first = len(scenario.before)
        await asyncio.gather(*(one(a) for a in attempts[:first]))
        clock.set(AFTER_MIDNIGHT)  # V3 requests of the first group may still be queued
        await asyncio.gather(*(one(a) for a in attempts[first:]))
        await queue.stop()
    finally:
        worker_log.removeHandler(handler)

    traces = [a.request.trace_id for a in attempts if a.request is not None]
    waitings, requests = await _left_behind(storage, store_ids, traces)
    numbers = {w.id: w.number for w in waitings}
    for attempt in attempts:
        if attempt.op.kind == "v3" and attempt.accepted and attempt.request is not None:
            outcome = requests.get(attempt.request.trace_id)
            if outcome is not None and outcome.state is RequestState.REGISTERED:
                attempt.number = numbers.get(outcome.waiting_id or 0)
            elif outcome is not None:
                attempt.refusal = outcome.reason
    kept = (
        await kept_differences(storage.engine, store_ids, DAYS)
        if isinstance(storage, PostgresStorage)
        else []
    )
    return Play(attempts, journal.events, settings_of, waitings, requests, queue.dead_count(), warnings, kept)


async def _target(storage: Storage, store_id: int, pick: int) -> int | None:
    """The `pick`-th waiting the store has (yesterday's first), once it has any; None if none comes.

    A plain read outside the journal: the move's own read of the waiting is what the model uses.
    """
    for _ in range(12):
        async with storage.unit_of_work() as work:
            found = [w for day in DAYS for w in await work.waitings.of_store(store_id, day)]
        if found:
            return found[pick % len(found)].id
        await asyncio.sleep(0)
    return None


async def _left_behind(
    storage: Storage, store_ids: list[int], traces: list[str]
) -> tuple[list[Waiting], dict[str, RequestStatus]]:
    """Every waiting of both days and the request log, whichever storage ran."""
    if isinstance(storage, MemoryStorage):
        return list(storage.db.waitings.values()), dict(storage.db.requests)
    assert isinstance(storage, PostgresStorage)
    async with SqlUnitOfWork(storage.engine) as work:
        waitings = [w for s in store_ids for day in DAYS for w in await work.waitings.of_store(s, day)]
        return waitings, await work.requests.decided(traces)


# --- The model and the checks ------------------------------------------------------------------


@dataclass
class _Facts:
    """A day's list as one registration saw it: last number, active customers and count."""

    last: int
    active: set[str]
    count: int


@dataclass
class _ModelWaiting:
    store_id: int
    day: date
    number: int
    customer: str
    status: WaitingStatus = WaitingStatus.WAITING


class _Model:
    def __init__(self, run: Play) -> None:
        self.run = run
        self.open = {store_id: s.waiting_open for store_id, s in run.stores.items()}
        self.waitings: dict[int, _ModelWaiting] = {}
        self.open_seen: dict[int, bool] = {}
        self.lists: dict[int, tuple[int, int, date, _Facts]] = {}
        self.status_seen: dict[int, WaitingStatus | None] = {}
        self.move_seen: dict[int, WaitingStatus | None] = {}
        self.expected: dict[str, int | str] = {}
        self.decided_at: dict[str, tuple[int, int]] = {}
        self.decided: Counter[str] = Counter()
        self.requests = {a.request.trace_id: a.request for a in run.attempts if a.request is not None}
        self.complaints: list[str] = []

    def facts(self, store_id: int, day: date) -> _Facts:
        mine = [w for w in self.waitings.values() if (w.store_id, w.day) == (store_id, day)]
        active = [w for w in mine if w.status in ACTIVE]
        return _Facts(max((w.number for w in mine), default=0), {w.customer for w in active}, len(active))

    def replay(self) -> Self:
        for event in self.run.events:
            if isinstance(event, StoreRead):
                self.open_seen[event.uow] = self.open[event.store_id]
            elif isinstance(event, ListRead):
                if event.day != event.clock_read.astimezone(SEOUL).date():
                    self.complaints.append(f"list of {event.day} loaded at {event.clock_read}")
                facts = self.facts(event.store_id, event.day)
                self.lists[event.uow] = (event.tick, event.store_id, event.day, facts)
            elif isinstance(event, WaitingRead):
                status = self.waitings[event.waiting_id].status if event.waiting_id in self.waitings else None
                self.status_seen[event.uow] = status
                if event.attempt is not None:
                    self.move_seen[event.attempt.index] = status
            else:
                self.finish(event)
        return self

    def finish(self, final: Final) -> None:
        if final.decisions:
            self.decide(final)
        for store_id, now_open in final.switched:
            self.open[store_id] = now_open
        for waiting_id, was, status in final.moved:
            current = self.waitings[waiting_id].status
            if current != was or current != self.status_seen.get(final.uow):
                self.complaints.append(
                    f"waiting {waiting_id} moved from {was} but was {current}: a lost update"
                )
            if status != ALLOWED.get((current, _action(final.attempt))):
                self.complaints.append(f"waiting {waiting_id} went {current} -> {status}")
            self.waitings[waiting_id].status = status

    def decide(self, final: Final) -> None:
        read_at, store_id, day, facts = self.lists[final.uow]
        if final.committed and self.facts(store_id, day).last != facts.last:
            self.complaints.append(f"store {store_id} decided on a stale list of {day} (read at {read_at})")
        for position, decision in enumerate(final.decisions):
            request = self.requests[decision.trace_id]
            key = request.customer.key
            self.decided[decision.trace_id] += 1
            self.decided_at[decision.trace_id] = (read_at, position)
            if not 1 <= request.party_size <= MAX_PARTY_SIZE:
                expected: int | str = "VALIDATION_ERROR"
            elif not self.open_seen[final.uow]:
                expected = "WAITING_CLOSED"
            elif key in facts.active:
                expected = "ALREADY_WAITING"
            elif (most := self.run.stores[store_id].max_queue_size) is not None and facts.count >= most:
                expected = "QUEUE_FULL"
            else:
                facts.last, facts.count = facts.last + 1, facts.count + 1
                facts.active.add(key)
                expected = facts.last
            self.expected[decision.trace_id] = expected
            if decision.outcome != expected:
                self.complaints.append(
                    f"{decision.trace_id}: the domain said {decision.outcome}, the model {expected}"
                )
            if decision.waiting is not None and final.committed and decision.waiting.id is not None:
                self.waitings[decision.waiting.id] = _ModelWaiting(
                    store_id, day, decision.waiting.number, key
                )


def _action(attempt: Attempt | None) -> str:
    return attempt.op.kind if attempt is not None else "?"


def complaints(run: Play) -> list[str]:
    """Every way the run differs from DOMAIN.md's rules, replayed in the order of decision."""
    model = _Model(run).replay()
    found = list(model.complaints)
    if run.dead_letters:
        found.append(f"{run.dead_letters} requests ended in the dead letters")
    found.extend(f"the worker warned: {warning}" for warning in run.worker_warnings)
    found.extend(run.kept)
    found.extend(_attempt_complaints(run, model))
    found.extend(_fifo_complaints(run, model))
    found.extend(_storage_complaints(run, model))
    return found


def _attempt_complaints(run: Play, model: _Model) -> Iterator[str]:
    for attempt in run.attempts:
        if attempt.failure is not None:
            yield f"{attempt.name} failed with {attempt.failure!r}"
            continue
        kind = attempt.op.kind
        if kind in ("open", "close") or attempt.skipped:
            continue
        if kind in MOVES:
            allowed = ALLOWED.get((model.move_seen.get(attempt.index), kind)) is not None  # type: ignore[arg-type]
            if attempt.refusal != (None if allowed else "INVALID_TRANSITION"):
                yield f"{attempt.name} of {model.move_seen.get(attempt.index)}: got {attempt.refusal}"
            continue
        assert attempt.request is not None
        trace = attempt.request.trace_id
        if kind == "v3" and not attempt.accepted:
            if attempt.refusal != "VALIDATION_ERROR" or model.decided[trace]:
                yield f"{attempt.name} refused at submission with {attempt.refusal}, yet decided"
            continue
        if model.decided[trace] != 1:
            yield f"{attempt.name} ({trace}) decided {model.decided[trace]} times"
        elif attempt.outcome != model.expected[trace]:
            yield f"{attempt.name} ({trace}) got {attempt.outcome}, the rules say {model.expected[trace]}"
        if kind == "v3":
            logged = run.requests.get(trace)
            if logged is None or logged.state not in (RequestState.REGISTERED, RequestState.REJECTED):
                yield f"{attempt.name} ({trace}) left the request log with {logged}"


def _fifo_complaints(run: Play, model: _Model) -> Iterator[str]:
    """A V3 request answered 202 before a V2 request began is decided first (rule 2)."""
    queued = [a for a in run.attempts if a.op.kind == "v3" and a.accepted]
    direct = [a for a in run.attempts if a.op.kind == "v2"]
    for earlier in queued:
        for later in direct:
            if earlier.store_id != later.store_id or earlier.ended >= later.started:
                continue
            first, second = earlier.request.trace_id, later.request.trace_id  # type: ignore[union-attr]
            both = first in model.decided_at and second in model.decided_at
            if both and model.decided_at[first] >= model.decided_at[second]:
                yield f"FIFO: V2 {later.name} overtook V3 {earlier.name}"


def _storage_complaints(run: Play, model: _Model) -> Iterator[str]:
    by_day: dict[tuple[int, date], list[int]] = defaultdict(list)
    for waiting in run.waitings:
        by_day[waiting.store_id, waiting.business_date].append(waiting.number)
    for (store_id, day), numbers in by_day.items():
        if sorted(numbers) != list(range(1, len(numbers) + 1)):
            yield f"store {store_id} on {day} has numbers {sorted(numbers)}"
    traces = [w.trace_id for w in run.waitings]
    if len(traces) != len(set(traces)):
        yield "a traceId holds two waitings"
    active = [(w.store_id, w.business_date, w.customer.key) for w in run.waitings if w.status in ACTIVE]
    if len(active) != len(set(active)):
        yield f"a customer holds two active waitings of one day: {sorted(active)}"
    stored = {w.id: (w.store_id, w.business_date, w.number, w.customer.key, w.status) for w in run.waitings}
    modelled = {i: (w.store_id, w.day, w.number, w.customer, w.status) for i, w in model.waitings.items()}
    if stored != modelled:
        yield f"storage holds {stored}, the model {modelled}"


# --- The properties ----------------------------------------------------------------------------


@given(scenario=mixed())
def test_mixed_v2_v3_store_actions_and_midnight_give_every_attempt_its_exact_outcome(
    scenario: Mixed, storage: StorageFactory
) -> None:
    run = asyncio.run(play(scenario, storage()))

    assert complaints(run) == []


# A mixed burst at one open store of two places: V2 and V3 by different customers and one
# customer twice, a cancel, and the midnight in between. Hypothesis only draws the interleaving.
BURST = (
    Op("v2", 0, customer=0),
    Op("v3", 0, customer=1),
    Op("v2", 0, customer=2),
    Op("v3", 0, customer=0),
)
AFTER = (Op("cancel", 0, target=0), Op("v2", 0, customer=USERS), Op("v3", 0, customer=1))
SEARCH = settings(
    max_examples=1000,
    database=None,
    deadline=None,
    phases=[Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
)


def burst(schedule: tuple[int, ...]) -> Mixed:
    return Mixed(stores=(StoreSettings(max_queue_size=2),), before=BURST, after=AFTER, schedule=schedule)


def breaks_without_lock(schedule: tuple[int, ...]) -> bool:
    return bool(complaints(asyncio.run(play(burst(schedule), MemoryStorage(), NoLock()))))


def test_the_check_knows_each_refusal_code_and_their_order() -> None:
    # A list of one place: customer 0 gets it; customer 1 finds it full; customer 0 again is
    # ALREADY_WAITING, which DOMAIN.md puts before QUEUE_FULL; a closed list answers first of all.
    scenario = Mixed(
        stores=(StoreSettings(max_queue_size=1), StoreSettings(waiting_open=False)),
        before=(
            Op("v2", 0, customer=0),
            Op("v3", 0, customer=1, delay=30),
            Op("v2", 0, customer=0, delay=60),
        ),
        after=(Op("v2", 1, customer=0), Op("v2", 0, customer=1, delay=5)),
    )
    run = asyncio.run(play(scenario, MemoryStorage()))
    assert [a.outcome for a in run.attempts] == [1, "QUEUE_FULL", "ALREADY_WAITING", "WAITING_CLOSED", 1]
    assert complaints(run) == []

    run.attempts[1].refusal, run.attempts[2].refusal = "ALREADY_WAITING", "QUEUE_FULL"
    assert len(complaints(run)) == 2


def test_without_the_lock_hypothesis_finds_an_attempt_the_check_refuses() -> None:
    schedule = find(schedules(60), breaks_without_lock, settings=SEARCH)

    assert complaints(asyncio.run(play(burst(schedule), MemoryStorage(), NoLock())))
    # The very same interleaving keeps every rule once the lock is back.
    assert complaints(asyncio.run(play(burst(schedule), MemoryStorage()))) == []
