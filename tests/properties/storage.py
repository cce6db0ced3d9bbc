"""Where the property runs keep their data: the memory unit of work, or the session's PostgreSQL.

Both give the run's contents back as a `MemoryDatabase`, so one set of checks reads either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.persistence.engine import Limits, make_engine
from adapters.persistence.memory import MemoryDatabase, MemoryUnitOfWork
from adapters.persistence.sql import SqlUnitOfWork
from application.ports import UnitOfWork
from domain.store import Store
from harness.postgres import empty


class Storage(Protocol):
    async def open(self) -> None: ...

    async def add(self, store: Store) -> None:
        """Keep the store, giving it its id."""
        ...

    def unit_of_work(self) -> UnitOfWork: ...

    async def contents(
        self, stores: Iterable[Store], trace_ids: Iterable[str], now: datetime
    ) -> MemoryDatabase:
        """What the run left: the stores' waitings of the day and the decided requests."""
        ...

    async def close(self) -> None: ...


StorageFactory = Callable[[], Storage]


class MemoryStorage:
    def __init__(self) -> None:
        self.db = MemoryDatabase()

    async def open(self) -> None:
        pass

    async def add(self, store: Store) -> None:
        store.id = next(self.db.ids)
        self.db.stores[store.id] = store

    def unit_of_work(self) -> UnitOfWork:
        return MemoryUnitOfWork(self.db)

    async def contents(
        self, stores: Iterable[Store], trace_ids: Iterable[str], now: datetime
    ) -> MemoryDatabase:
        return self.db

    async def close(self) -> None:
        pass


class PostgresStorage:
    """The session's database, emptied as the run opens it."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        assert self._engine is not None, "open the storage first"
        return self._engine

    async def open(self) -> None:
        self._engine = make_engine(self._url, Limits(pool_size=10))
        await empty(self._engine)

    async def add(self, store: Store) -> None:
        async with SqlUnitOfWork(self.engine) as work:
            await work.stores.add(store)
            await work.commit()

    def unit_of_work(self) -> UnitOfWork:
        return SqlUnitOfWork(self.engine)

    async def contents(
        self, stores: Iterable[Store], trace_ids: Iterable[str], now: datetime
    ) -> MemoryDatabase:
        db = MemoryDatabase()
        async with SqlUnitOfWork(self.engine) as work:
            for store in stores:
                db.stores[store.id] = store
                for waiting in await work.waitings.of_store(store.id, store.business_date(now)):
                    assert waiting.id is not None
                    db.waitings[waiting.id] = waiting
            db.requests.update(await work.requests.decided(list(trace_ids)))
        return db

    async def close(self) -> None:
        await self.engine.dispose()
