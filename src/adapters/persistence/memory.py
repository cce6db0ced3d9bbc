"""The unit of work in memory: the same contract as SQL, with its constraints checked at commit.

Writes wait in the unit of work and reach the shared state only in `commit`, which never awaits,
so a commit is atomic for asyncio. It is a real adapter (a process that needs no persistence can
run on it) and the fast double for use-case tests.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime
from types import TracebackType
from typing import Self

from adapters.persistence.alerts import (
    MemoryAlertsState,
    MemoryCloseAlerts,
    MemoryWebhookOutbox,
    PendingAlerts,
)
from adapters.persistence.status_tokens import same_token, selector, well_formed
from application.ports import ConcurrencyConflict
from application.requests import RequestStatus
from domain.errors import AlreadyWaiting
from domain.store import Store
from domain.waiting import Waiting, WaitingStatus
from domain.waiting_list import WaitingList


@dataclass
class MemoryDatabase:
    stores: dict[int, Store] = field(default_factory=dict)
    waitings: dict[int, Waiting] = field(default_factory=dict)
    sequences: dict[tuple[int, date], int] = field(default_factory=dict)
    requests: dict[str, RequestStatus] = field(default_factory=dict)
    fences: dict[int, int] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    alerts: MemoryAlertsState = field(default_factory=MemoryAlertsState)


def _copy(waiting: Waiting) -> Waiting:
    twin = copy.copy(waiting)
    twin.events = []
    return twin


@dataclass
class _Pending:
    stores: dict[int, Store] = field(default_factory=dict)
    new_waitings: dict[int, Waiting] = field(default_factory=dict)
    changed: dict[int, tuple[Waiting, WaitingStatus]] = field(default_factory=dict)
    places: dict[int, int] = field(default_factory=dict)  # where each changed waiting was first read
    sequences: dict[tuple[int, date], tuple[int, int]] = field(default_factory=dict)
    requests: dict[str, RequestStatus] = field(default_factory=dict)
    fences: dict[int, int] = field(default_factory=dict)
    alerts: PendingAlerts = field(default_factory=PendingAlerts)


class MemoryStores:
    def __init__(self, db: MemoryDatabase, pending: _Pending) -> None:
        self._db, self._pending = db, pending

    async def add(self, store: Store) -> None:
        store.id = next(self._db.ids)
        self._pending.stores[store.id] = copy.copy(store)

    async def get(self, store_id: int) -> Store | None:
        store = self._pending.stores.get(store_id) or self._db.stores.get(store_id)
        return copy.copy(store) if store else None

    async def save(self, store: Store) -> None:
        self._pending.stores[store.id] = copy.copy(store)

    async def fence(self, store_id: int, token: int) -> None:
        if token < self._db.fences.get(store_id, 0):
            raise ConcurrencyConflict(f"store {store_id}: the lock's lease ended; a newer holder wrote")
        self._pending.fences[store_id] = token


class MemoryWaitings:
    def __init__(self, db: MemoryDatabase, pending: _Pending) -> None:
        self._db, self._pending = db, pending

    def _all(self) -> list[Waiting]:
        merged = dict(self._db.waitings)
        merged.update(self._pending.new_waitings)
        merged.update({i: w for i, (w, _) in self._pending.changed.items()})
        return list(merged.values())

    async def load_list(self, store: Store, business_date: date, customers: Collection[str]) -> WaitingList:
        key = (store.id, business_date)
        last = self._pending.sequences.get(key, (0, self._db.sequences.get(key, 0)))[1]
        active = [
            w
            for w in self._all()
            if w.store_id == store.id and w.business_date == business_date and w.status.active
        ]
        waiting = [w for w in active if w.status is WaitingStatus.WAITING]
        wanted = set(customers)
        return WaitingList(
            store=store,
            business_date=business_date,
            last_number=last,
            active_count=len(active),
            waiting_count=len(waiting),
            active_customers={w.customer.key for w in active if w.customer.key in wanted},
        )

    async def save_list(self, waiting_list: WaitingList) -> None:
        await self.advance(waiting_list, await self.insert_new(waiting_list))

    async def insert_new(self, waiting_list: WaitingList) -> int:
        new = [w for w in waiting_list.registered if w.id is None]
        for waiting in new:
            waiting.id = next(self._db.ids)
            self._pending.new_waitings[waiting.id] = _copy(waiting)
        return len(new)

    async def advance(self, waiting_list: WaitingList, joined: int) -> None:
        if not joined:
            return
        key = (waiting_list.store.id, waiting_list.business_date)
        previous = waiting_list.last_number - joined
        first_seen = self._pending.sequences.get(key, (previous, previous))[0]
        self._pending.sequences[key] = (first_seen, waiting_list.last_number)

    async def get(self, waiting_id: int) -> Waiting | None:
        return next((_copy(w) for w in self._all() if w.id == waiting_id), None)

    async def by_status_token(self, status_token: str) -> Waiting | None:
        if not well_formed(status_token):
            return None
        key = selector(status_token)
        found = next((w for w in self._all() if selector(w.status_token) == key), None)
        return _copy(found) if found and same_token(found.status_token, status_token) else None

    async def save(self, waiting: Waiting, was: WaitingStatus, was_at: int | None = None) -> None:
        assert waiting.id is not None
        self._pending.changed[waiting.id] = (_copy(waiting), was)
        self._pending.places.setdefault(waiting.id, waiting.place if was_at is None else was_at)

    async def of_store(
        self,
        store_id: int,
        business_date: date,
        status: WaitingStatus | None = None,
        *,
        after: int | None = None,
        limit: int | None = None,
    ) -> list[Waiting]:
        found = [
            _copy(w)
            for w in self._all()
            if w.store_id == store_id
            and w.business_date == business_date
            and status in (None, w.status)
            and (after is None or w.place > after)
        ]
        return sorted(found, key=lambda w: w.place)[:limit]

    async def last_calls(self, store_id: int, business_date: date, most: int) -> list[datetime]:
        calls = [
            w.called_at
            for w in self._all()
            if w.store_id == store_id and w.business_date == business_date and w.called_at is not None
        ]
        return sorted(calls, reverse=True)[:most]

    async def count_waiting(self, store_id: int, business_date: date, below: int | None = None) -> int:
        return sum(
            1
            for w in self._all()
            if w.store_id == store_id
            and w.business_date == business_date
            and w.status is WaitingStatus.WAITING
            and (below is None or w.place < below)
        )


class MemoryRequests:
    def __init__(self, db: MemoryDatabase, pending: _Pending) -> None:
        self._db, self._pending = db, pending

    async def decided(self, trace_ids: Collection[str]) -> dict[str, RequestStatus]:
        known = {**self._db.requests, **self._pending.requests}
        return {trace_id: known[trace_id] for trace_id in trace_ids if trace_id in known}

    async def record(self, *statuses: RequestStatus) -> None:
        for status in statuses:
            if status.trace_id in self._pending.requests:
                raise ConcurrencyConflict(f"request {status.trace_id} recorded twice")
            self._pending.requests[status.trace_id] = status


class MemoryUnitOfWork:
    stores: MemoryStores
    waitings: MemoryWaitings
    requests: MemoryRequests
    close_alerts: MemoryCloseAlerts
    webhooks: MemoryWebhookOutbox

    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db
        self._pending = _Pending()

    async def __aenter__(self) -> Self:
        self._pending = _Pending()
        self.stores = MemoryStores(self._db, self._pending)
        self.waitings = MemoryWaitings(self._db, self._pending)
        self.requests = MemoryRequests(self._db, self._pending)
        self.close_alerts = MemoryCloseAlerts(self._db.alerts, self._pending.alerts, self.waitings)
        self.webhooks = MemoryWebhookOutbox(self._db.alerts, self._pending.alerts)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._pending = _Pending()

    async def commit(self) -> None:
        pending, db = self._pending, self._db
        self._check(pending)
        db.stores.update(pending.stores)
        db.sequences.update({key: last for key, (_, last) in pending.sequences.items()})
        db.waitings.update(pending.new_waitings)
        db.waitings.update({i: w for i, (w, _) in pending.changed.items()})
        db.requests.update(pending.requests)
        db.fences.update(pending.fences)
        pending.alerts.apply(db.alerts)
        self._pending = _Pending()

    def _check(self, pending: _Pending) -> None:
        """The constraints of the SQL schema, checked before anything is applied."""
        db = self._db
        for key, (first_seen, _) in pending.sequences.items():
            if db.sequences.get(key, 0) != first_seen:
                raise ConcurrencyConflict("the day's sequence moved concurrently")
        for waiting_id, (_, was) in pending.changed.items():
            kept = db.waitings[waiting_id]
            if kept.status is not was or kept.place != pending.places[waiting_id]:
                raise ConcurrencyConflict(f"waiting {waiting_id} changed concurrently")
        if any(token < db.fences.get(store_id, 0) for store_id, token in pending.fences.items()):
            raise ConcurrencyConflict("the lock's lease ended; a newer holder wrote")
        if any(trace_id in db.requests for trace_id in pending.requests):
            raise ConcurrencyConflict("a request was decided concurrently")
        pending.alerts.check(db.alerts)
        after = {**db.waitings, **pending.new_waitings, **{i: w for i, (w, _) in pending.changed.items()}}
        numbers = [(w.store_id, w.business_date, w.number) for w in after.values()]
        traces = [w.trace_id for w in after.values()]
        selectors = [selector(w.status_token) for w in after.values()]
        for values in (numbers, traces, selectors):
            if len(values) != len(set(values)):
                raise ConcurrencyConflict("a unique constraint refused the change")
        active = [(w.store_id, w.business_date, w.customer.key) for w in after.values() if w.status.active]
        if len(active) != len(set(active)):
            raise AlreadyWaiting("this customer already holds an active waiting at this store")
