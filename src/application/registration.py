"""Registering: V2 decides at once under the store's lock; V3 queues, and a worker decides."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from application.access import Actor, Role
from application.announcements import Announcer
from application.combining import Combined
from application.guest_input import guest_name, mobile_number
from application.pace import history_minutes
from application.pipeline import Abandoned, Decided, Turn, parts
from application.ports import (
    Clock,
    ConcurrencyConflict,
    Lock,
    QueueUnavailable,
    RegistrationQueue,
    RequestStatusStore,
    UnitOfWork,
    UnitOfWorkFactory,
)
from application.requests import RegistrationRequest, RequestStatus
from application.stores import existing_store
from application.views import View, waiting_view
from domain.customer import Channel
from domain.errors import AlreadyWaiting, DomainError, LockTimeout, StoreNotFound
from domain.store import Store
from domain.waiting import Waiting
from domain.waiting_list import Registration, WaitingList

log = logging.getLogger(__name__)

MAX_CONFLICT_RETRIES = 5
# The outcome kept for a request whose queue write failed (its client was answered 503).
ABANDONED = "UNAVAILABLE"


@dataclass(frozen=True)
class LockTimes:
    """How long to wait for a store's lock, and how long a holder may keep it."""

    wait: float = 5.0
    lease: float | None = 10.0


def store_lock_key(store_id: int) -> str:
    return f"store_waiting:{store_id}"


def new_trace_id() -> str:
    return str(uuid.uuid4())


class NewRequests:
    """Registration requests as they arrive, stamped with a fresh traceId and the time."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def for_customer(self, actor: Actor, store_id: int, party_size: int) -> RegistrationRequest:
        """A customer joining through the app: the token's subject is the customer."""
        actor.require_role(Role.CUSTOMER)
        return RegistrationRequest(
            trace_id=new_trace_id(),
            store_id=store_id,
            channel=Channel.USER,
            party_size=party_size,
            requested_at=self._clock.now(),
            user_id=actor.subject,
        )

    def for_guest(
        self, actor: Actor, store_id: int, name: str, phone_number: str, party_size: int
    ) -> RegistrationRequest:
        """A guest joining at the store's tablet: name and mobile number, no account."""
        actor.require_own_store(store_id)
        return RegistrationRequest(
            trace_id=new_trace_id(),
            store_id=store_id,
            channel=Channel.APP,
            party_size=party_size,
            requested_at=self._clock.now(),
            name=guest_name(name),
            phone_number=mobile_number(phone_number),
        )


# A status token is what secrets.token_urlsafe(24) gives: 24 random bytes, 32 URL-safe characters.
TOKEN_BYTES, TOKEN_LENGTH = 24, 32


def status_tokens(count: int) -> list[str]:
    """`count` status tokens from one read of the OS's randomness: 24 bytes are whole base64
    groups, so the encoding of them all cuts into the tokens (a read per token is a system call
    per registration)."""
    text = base64.urlsafe_b64encode(secrets.token_bytes(TOKEN_BYTES * count)).decode("ascii")
    return [text[start : start + TOKEN_LENGTH] for start in range(0, len(text), TOKEN_LENGTH)]


def _registration(request: RegistrationRequest, status_token: str) -> Registration:
    return Registration(
        trace_id=request.trace_id,
        customer=request.customer,
        party_size=request.party_size,
        status_token=status_token,
    )


class RegisterWaiting:
    """V2: load, decide and save under the store's lock, so numbers follow arrival order.

    Requests for one store that arrive while its lock is held are decided together by the next
    holder, in one transaction, in arrival order, each answered with its own Waiting or refusal.
    Requests for the store already answered QUEUED (V3) were accepted earlier: they are decided
    first, under the same lock, so a V2 registration never overtakes them.
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        lock: Lock,
        clock: Clock,
        announcer: Announcer,
        lock_times: LockTimes,
        queue: RegistrationQueue,
        queued: ProcessRegistrations,
        batch_size: int = 200,
    ) -> None:
        self._uow, self._lock, self._clock = uow, lock, clock
        self._announcer, self._lock_times = announcer, lock_times
        self._queue, self._queued = queue, queued
        self._combined = Combined(self._batch, most=batch_size)

    async def __call__(self, request: RegistrationRequest) -> View:
        return await self._combined(request.store_id, request)

    async def _batch(self, store_id: int, requests: list[RegistrationRequest]) -> list[View | Exception]:
        times = self._lock_times
        async with self._lock.hold(
            store_lock_key(store_id), wait_time=times.wait, lease_time=times.lease
        ) as fence:
            if earlier := await self._queue.pending(store_id):
                await self._queued.settle(earlier, fence)
            store, decisions, history = await self._decide(store_id, requests, fence)
        await self._announcer.registered(store, _registered(decisions), history)
        return [
            waiting_view(d, rank, store, history) if isinstance(d, Waiting) else d for d, rank in decisions
        ]

    async def _decide(
        self, store_id: int, requests: list[RegistrationRequest], fence: int
    ) -> tuple[Store, list[Decision], float | None]:
        """The decisions, and the day's pace of calls for the answers' estimates."""
        async with self._uow() as uow:
            store = await existing_store(uow, store_id)
            await uow.stores.fence(store.id, fence)
            now = self._clock.now()
            customers = {request.customer.key for request in requests}
            day = await uow.waitings.load_list(store, store.business_date(now), customers)
            decisions = register_each(day, requests, now)
            await uow.waitings.save_list(day)
            history = await history_minutes(uow, store.id, day.business_date) if day.registered else None
            await uow.commit()
        return store, decisions, history


# A request's decision: its Waiting and rank, or why it was refused (rank 0).
Decision = tuple[Waiting | DomainError, int]


def register_each(day: WaitingList, requests: Sequence[RegistrationRequest], now: datetime) -> list[Decision]:
    """Register the requests in order; a refusal refuses that request alone."""
    decisions: list[Decision] = []
    for request, status_token in zip(requests, status_tokens(len(requests)), strict=True):
        try:
            waiting = day.register(_registration(request, status_token), now)
        except DomainError as refusal:
            decisions.append((refusal, 0))
        else:
            decisions.append((waiting, day.waiting_count))  # the newest is the last in line
    return decisions


def _registered(decisions: list[Decision]) -> list[tuple[Waiting, int]]:
    return [(decision, rank) for decision, rank in decisions if isinstance(decision, Waiting)]


class RecentStores:
    """Stores as read at most `fresh_for` seconds ago.

    V3's accept checks only that the store exists and that the party fits, and the worker checks
    the party again when it decides: a read a second old is good enough there, and a hot store's
    accepts then cost no database round trip each (measured: 43 % of an accept's time).
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        fresh_for: float = 1.0,
        most: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._uow, self._fresh_for, self._most, self._clock = uow, fresh_for, most, clock
        self._read: dict[int, tuple[float, Store]] = {}
        self._reading: dict[int, asyncio.Future[Store]] = {}

    async def get(self, store_id: int) -> Store:
        known = self._read.get(store_id)
        if known is not None and self._clock() - known[0] < self._fresh_for:
            return known[1]
        # One read per store at a time, shared by every accept that arrives meanwhile: when a hot
        # store's entry expires, hundreds of accepts must not each take a connection to read it
        # (measured: the pool ran dry and accepts were refused 503).
        reading = self._reading.get(store_id)
        if reading is None:
            reading = asyncio.ensure_future(self._fetch(store_id))
            self._reading[store_id] = reading
            reading.add_done_callback(lambda done: self._fetched(store_id, done))
        # Shielded: one caller going away must not cancel the read the others wait for.
        return await asyncio.shield(reading)

    async def _fetch(self, store_id: int) -> Store:
        now = self._clock()
        async with self._uow() as uow:
            store = await existing_store(uow, store_id)
        if len(self._read) >= self._most:
            self._read.clear()
        self._read[store_id] = (now, store)
        return store

    def _fetched(self, store_id: int, reading: asyncio.Future[Store]) -> None:
        self._reading.pop(store_id, None)
        if not reading.cancelled():
            reading.exception()  # told to whoever waited; nobody left waiting is no error


class SubmitRegistration:
    """V3: check the shape and the store, queue the request, answer QUEUED."""

    def __init__(
        self, uow: UnitOfWorkFactory, queue: RegistrationQueue, statuses: RequestStatusStore
    ) -> None:
        self._stores, self._uow, self._queue, self._statuses = RecentStores(uow), uow, queue, statuses

    async def __call__(self, request: RegistrationRequest) -> RequestStatus:
        store = await self._stores.get(request.store_id)
        store.check_party_size(request.party_size)
        status = RequestStatus.queued(request)
        # Known before it is queued, so a fast worker's outcome is never overwritten by QUEUED.
        try:
            await self._statuses.put(status)
        except Exception as error:
            # Where statuses live apart (Redis), their being away must not stop accepts: the
            # request log answers for the request once it is decided.
            log.warning("request %s accepted without a QUEUED status: %r", request.trace_id, error)
        try:
            await self._queue.publish(request)
        except QueueUnavailable:
            if await self._abandon(request):
                raise
            return status  # it got through after all, and was decided already
        except BaseException:
            # The client went away mid-write: no status to poll (the request may still be decided).
            await self._statuses.forget(request.trace_id)
            raise
        return status

    async def _abandon(self, request: RegistrationRequest) -> bool:
        """The queue did not confirm the write, but a write that timed out may still arrive (a
        broker's client can deliver it later). Decide the request now as refused, so that if it
        does arrive it changes nothing: the client is told 503, and 503 must mean "not taken".
        False if it was decided already (it did arrive, and was taken)."""
        try:
            async with self._uow() as uow:
                await uow.requests.record(RequestStatus.queued(request).rejected(ABANDONED))
                await uow.commit()
        except ConcurrencyConflict:
            log.warning("request %s was decided although its queue write failed", request.trace_id)
            return False
        except Exception as error:
            # The database is away too: a late delivery of this write would still be decided.
            log.warning("request %s not marked abandoned: %r", request.trace_id, error)
        with contextlib.suppress(Exception):  # nobody was given its traceId to poll
            await self._statuses.forget(request.trace_id)
        return True


class ProcessRegistrations:
    """The worker's side of V3: decide queued requests in order, a store's batch at a time.

    Each traceId is decided once: a redelivered request gets its recorded outcome back. The
    worker never rejects for its own contention: it waits for the lock again instead.
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        lock: Lock,
        clock: Clock,
        statuses: RequestStatusStore,
        announcer: Announcer,
        lock_times: LockTimes,
        most: int = 1000,
    ) -> None:
        self._uow, self._lock, self._clock = uow, lock, clock
        self._statuses, self._announcer, self._lock_times = statuses, announcer, lock_times
        self._most = most

    async def __call__(self, requests: Sequence[RegistrationRequest]) -> list[RequestStatus]:
        by_store: dict[int, list[RegistrationRequest]] = {}
        for request in requests:
            by_store.setdefault(request.store_id, []).append(request)
        outcomes = await asyncio.gather(*(self._store_batch(batch) for batch in by_store.values()))
        return [status for batch in outcomes for status in batch]

    async def _store_batch(self, batch: list[RegistrationRequest]) -> list[RequestStatus]:
        key, times = store_lock_key(batch[0].store_id), self._lock_times
        conflicts = 0
        while True:
            try:
                async with self._lock.hold(key, wait_time=times.wait, lease_time=times.lease) as fence:
                    return await self.settle(batch, fence)
            except LockTimeout:
                log.info("store %s busy; waiting for its lock again", batch[0].store_id)
            except (ConcurrencyConflict, AlreadyWaiting):
                # Only a lost lease lets another writer in; the constraints refused its race (an
                # active customer's among them). Decided again on fresh data, each request gets
                # its own answer.
                conflicts += 1
                if conflicts > MAX_CONFLICT_RETRIES:
                    raise
                log.warning("store %s batch raced another writer; retrying", batch[0].store_id)
                await asyncio.sleep(0.05 * conflicts)

    async def give_up(self, requests: Sequence[RegistrationRequest], reason: str) -> None:
        """The queue set these aside as dead letters: FAILED, unless an outcome is known already."""
        await self._statuses.put_all([RequestStatus.queued(request).failed(reason) for request in requests])

    async def settle(self, batch: Sequence[RegistrationRequest], fence: int) -> list[RequestStatus]:
        """Decide one store's requests and make the outcomes known; the caller holds the lock,
        `fence` its token.

        In transactions of at most `most` requests, as a pipeline (`application.pipeline`): each
        part is read and decided while the part before it is written, and moves the day's sequence
        once that one committed. A part that fails stops the parts after it; those committed
        before stay.
        """
        turns: list[asyncio.Task[list[RequestStatus]]] = []
        before: Turn | None = None  # the part launched last
        two_back: Turn | None = None
        try:
            for part in parts(batch, self._most):
                # Two parts at most in flight: one written, the next read and decided. (A read
                # made before the part two back committed could not tell where the day stood.)
                if two_back is not None and not await two_back.committed:
                    break
                turn = Turn()
                turns.append(asyncio.create_task(self._settle_part(part, fence, before, turn)))
                pending: list[asyncio.Future[Any]] = [turn.decided, turns[-1]]
                await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if turn.decided.done() and turn.decided.result() is None:
                    break
                two_back, before = before, turn
            # In order: the first part to fail is the cause; those after it were Abandoned.
            return [status for task in turns for status in await task]
        finally:
            for task in turns:
                task.cancel()
            await asyncio.gather(*turns, return_exceptions=True)

    async def _settle_part(
        self, part: Sequence[RegistrationRequest], fence: int, before: Turn | None, turn: Turn
    ) -> list[RequestStatus]:
        try:
            statuses, registered, store, history = await self._decide(part, fence, before, turn)
            if before is not None:
                await before.announced
            await self._statuses.put_all(statuses)
            await self._announcer.registered(store, registered, history)
            return statuses
        finally:
            turn.end()

    async def _decide(
        self, batch: Sequence[RegistrationRequest], fence: int, before: Turn | None, turn: Turn
    ) -> tuple[list[RequestStatus], list[tuple[Waiting, int]], Store | None, float | None]:
        """The batch's outcomes, those registered with their ranks, the store, and the day's pace.

        Read and decided on what `before` will have written; its rows are written while `before`
        commits, the sequence moved only after."""
        earlier = before.decided.result() if before is not None else None
        history, registered = None, list[tuple[Waiting, int]]()
        async with self._uow() as uow:
            decided, carried, fresh = await _undecided(uow, batch, earlier)
            trace_ids = frozenset(r.trace_id for r in fresh)
            store = await uow.stores.get(batch[0].store_id)
            if store is None:
                turn.decided.set_result(Decided.of(None, 0, trace_ids))
                outcomes = [RequestStatus.queued(r).rejected(StoreNotFound.code) for r in fresh]
                await uow.requests.record(*outcomes)
                await _after(before)
            else:
                now = self._clock.now()
                day = await uow.waitings.load_list(
                    store, store.business_date(now), {r.customer.key for r in fresh}
                )
                if earlier is not None:
                    earlier.carry_into(day)
                previous = day.last_number
                decisions = register_each(day, fresh, now)
                turn.decided.set_result(Decided.of(day, previous, trace_ids))
                if day.registered:
                    history = await history_minutes(uow, store.id, day.business_date)
                # Written while the part before commits: only the sequence's move must follow it.
                joined = await uow.waitings.insert_new(day)
                outcomes = [_outcome(r, d) for r, (d, _) in zip(fresh, decisions, strict=True)]
                registered = _registered(decisions)
                await uow.requests.record(*outcomes)
                await _after(before)
                # Checked where it is written: a holder whose lease ran out writes nothing.
                await uow.stores.fence(store.id, fence)
                await uow.waitings.advance(day, joined)
            await uow.commit()
        turn.outcomes = {outcome.trace_id: outcome for outcome in outcomes}
        turn.committed.set_result(True)
        decided.update(turn.outcomes)
        if before is not None:
            decided.update((trace_id, before.outcomes[trace_id]) for trace_id in carried)
        return [decided[r.trace_id] for r in batch], registered, store, history


async def _undecided(
    uow: UnitOfWork, batch: Sequence[RegistrationRequest], earlier: Decided | None
) -> tuple[dict[str, RequestStatus], set[str], list[RegistrationRequest]]:
    """What is decided already (recorded), the traceIds the part before decides (its outcome is
    known once it commits), and the requests left to decide, each traceId once."""
    decided = await uow.requests.decided([r.trace_id for r in batch])
    carried = {r.trace_id for r in batch if earlier and r.trace_id in earlier.trace_ids} - decided.keys()
    known = decided.keys() | carried
    return decided, carried, list({r.trace_id: r for r in batch if r.trace_id not in known}.values())


async def _after(before: Turn | None) -> None:
    """Wait for the part before to commit; if it did not, this part must not either."""
    if before is not None and not await before.committed:
        raise Abandoned("the part before did not commit")


def _outcome(request: RegistrationRequest, decision: Waiting | DomainError) -> RequestStatus:
    if isinstance(decision, DomainError):
        return RequestStatus.queued(request).rejected(decision.code)
    assert decision.id is not None
    return RequestStatus.registered_as(request, decision.id)
