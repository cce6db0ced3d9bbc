"""The ports the use cases depend on; adapters implement them, entrypoints choose which."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime
from types import TracebackType
from typing import Any, Protocol, Self

from application.requests import RegistrationRequest, RequestStatus
from domain.store import Store
from domain.waiting import Waiting, WaitingStatus
from domain.waiting_list import WaitingList


class Clock(Protocol):
    def now(self) -> datetime:
        """The current moment, timezone-aware."""
        ...


class Lock(Protocol):
    """A lock per key, with Redisson's RLock semantics.

    `hold` waits at most `wait_time` seconds, else raises `LockTimeout`. The lock expires
    `lease_time` seconds after it was taken, or, with `lease_time=None`, is kept alive by a
    watchdog for as long as the holder lives. Leaving the block unlocks only if this holder
    still owns the lock.

    The block is given a fencing token: it grows with each acquisition of the key, survives a
    restart of the lock's server (it follows the clock), and is never smaller than one given
    before. A store that remembers the largest token it saw (`StoreRepository.fence`) can refuse
    the late writes of a holder whose lease ended while it was paused.
    """

    def hold(
        self, key: str, *, wait_time: float, lease_time: float | None
    ) -> AbstractAsyncContextManager[int]: ...


class QueueUnavailable(Exception):
    """The registration queue did not confirm the write; nothing was queued."""


class RegistrationQueue(Protocol):
    async def publish(self, request: RegistrationRequest) -> None:
        """Return only once the request is durably queued; raise `QueueUnavailable` otherwise."""
        ...

    async def pending(self, store_id: int) -> list[RegistrationRequest]:
        """The store's queued requests not yet acknowledged by the worker, in queue order.

        Some may be decided already (the worker records before it acknowledges).
        """
        ...


class ConcurrencyConflict(Exception):
    """The store refused a write that raced another; retrying is safe."""


class StoreRepository(Protocol):
    async def add(self, store: Store) -> None:
        """Insert a new store; gives it its id."""
        ...

    async def get(self, store_id: int) -> Store | None: ...

    async def save(self, store: Store) -> None: ...

    async def fence(self, store_id: int, token: int) -> None:
        """Write under the store's lock only while `token` is the newest the store has seen.

        Raise `ConcurrencyConflict` when a larger token was seen: a newer holder of the lock
        wrote, so this holder's lease ended; the transaction must not commit.
        """
        ...


class WaitingRepository(Protocol):
    async def load_list(self, store: Store, business_date: date, customers: Collection[str]) -> WaitingList:
        """The day's list as registration needs it, for the given customer keys."""
        ...

    async def save_list(self, waiting_list: WaitingList) -> None:
        """Insert the list's new waitings (giving them ids) and advance its sequence."""
        ...

    async def get(self, waiting_id: int) -> Waiting | None: ...

    async def by_status_token(self, status_token: str) -> Waiting | None: ...

    async def save(self, waiting: Waiting, was: WaitingStatus) -> None:
        """Store a waiting's new status; raise `ConcurrencyConflict` if it is no longer `was`."""
        ...

    async def of_store(
        self,
        store_id: int,
        business_date: date,
        status: WaitingStatus | None = None,
        *,
        after: int | None = None,
        limit: int | None = None,
    ) -> list[Waiting]:
        """The day's waitings of a store, ordered by number: only those numbered above `after`,
        at most `limit`, if given."""
        ...

    async def count_waiting(self, store_id: int, business_date: date, below: int | None = None) -> int:
        """How many of the day's waitings are WAITING, only those numbered below `below` if given."""
        ...


class RequestLog(Protocol):
    """Decided registration requests, so that a traceId is applied at most once."""

    async def decided(self, trace_ids: Collection[str]) -> dict[str, RequestStatus]: ...

    async def record(self, *statuses: RequestStatus) -> None:
        """Keep the outcomes; raise `ConcurrencyConflict` if one was recorded already."""
        ...


class UnitOfWork(Protocol):
    """One transaction; rolled back on exit unless committed."""

    stores: StoreRepository
    waitings: WaitingRepository
    requests: RequestLog

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None:
        """Make the work durable; raise `ConcurrencyConflict` when a constraint refused it."""
        ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


@dataclass(frozen=True)
class Event:
    """One message of a live stream. Ids grow within a stream, so a client can resume."""

    id: str
    type: str
    data: Mapping[str, Any]


class Subscription(Protocol):
    missed: list[Event] | None
    """Events after the client's Last-Event-ID, or None: no id given, or its events not kept."""

    head: str
    """The id of the stream's latest event when the subscription began ("0" for none)."""

    def __aiter__(self) -> AsyncIterator[Event]: ...


class Notifier(Protocol):
    async def publish(self, stream: str, event_type: str, data: Mapping[str, Any]) -> None: ...

    async def publish_all(self, events: Sequence[tuple[str, str, Mapping[str, Any]]]) -> None:
        """`publish` each (stream, event type, data), in order; many streams' events at once."""
        ...

    def subscribe(
        self, stream: str, last_event_id: str | None
    ) -> AbstractAsyncContextManager[Subscription]: ...


class RequestStatusStore(Protocol):
    """Where a queued request's status is kept for polling and for waiting on its outcome."""

    async def put(self, status: RequestStatus) -> None: ...

    async def put_all(self, statuses: Sequence[RequestStatus]) -> None:
        """`put` each, in order; a batch's outcomes at once."""
        ...

    async def get(self, trace_id: str) -> RequestStatus | None: ...

    async def wait_decided(self, trace_id: str, within: float) -> RequestStatus | None:
        """The status once decided, or the latest known one when `within` seconds pass first."""
        ...

    async def forget(self, trace_id: str) -> None:
        """Drop the status unless it is decided."""
        ...
