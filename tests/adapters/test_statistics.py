"""A rush's tables are analyzed as they grow (PostgreSQL), so the planner never takes a day of
thousands of entries for a handful; at most so often, and never on SQLite."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.persistence.engine import make_engine
from adapters.persistence.sql import SqlUnitOfWork
from adapters.persistence.statistics import FreshStatistics
from domain.customer import Customer
from domain.store import Store
from domain.waiting_list import Registration
from harness.postgres import emptied

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


async def _analyzed(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        count = await connection.exec_driver_sql(
            "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'waitings'"
        )
        return int(count.scalar_one())


async def _register(engine: AsyncEngine, statistics: FreshStatistics, customers: range) -> None:
    store = Store(id=0, name="Rush", waiting_open=True)
    async with SqlUnitOfWork(engine, statistics) as uow:
        await uow.stores.add(store)
        day = await uow.waitings.load_list(store, store.business_date(NOW), [])
        for n in customers:
            day.register(Registration(f"trace-{n}", Customer.user(f"u{n}"), 2, f"token-{n}"), NOW)
        await uow.waitings.save_list(day)
        await uow.commit()


async def test_the_tables_are_analyzed_once_enough_waitings_were_written(postgres_url: str) -> None:
    async with emptied(postgres_url) as engine:
        statistics = FreshStatistics(engine, every_rows=5, at_most_every=0)
        before = await _analyzed(engine)
        await _register(engine, statistics, range(4))
        await statistics.finished()
        assert statistics.runs == 0
        await _register(engine, statistics, range(4, 6))
        await statistics.finished()
        assert statistics.runs == 1
        for _ in range(100):  # the statistics views are updated apart from the catalog
            if await _analyzed(engine) > before:
                break
            await asyncio.sleep(0.02)
        assert await _analyzed(engine) > before
        await statistics.close()


async def test_at_most_once_per_interval(postgres_url: str) -> None:
    now = [100.0]
    async with emptied(postgres_url) as engine:
        statistics = FreshStatistics(engine, every_rows=1, at_most_every=30, clock=lambda: now[0])
        for customers in (range(2), range(2, 4)):
            await _register(engine, statistics, customers)
            await statistics.finished()
        assert statistics.runs == 1
        now[0] += 30
        await _register(engine, statistics, range(4, 6))
        await statistics.finished()
        assert statistics.runs == 2


async def test_a_table_locked_elsewhere_is_skipped_not_waited_for(postgres_url: str) -> None:
    """A migration or autovacuum holding a table: the refresh goes past it instead of queueing
    (and making whatever comes next queue behind it)."""
    dsn = make_url(postgres_url).set(drivername="postgresql").render_as_string(hide_password=False)
    async with emptied(postgres_url) as engine:
        statistics = FreshStatistics(engine, every_rows=1, at_most_every=0)
        admin = await asyncpg.connect(dsn)
        try:
            async with admin.transaction():
                await admin.execute("LOCK TABLE waitings IN SHARE UPDATE EXCLUSIVE MODE")
                statistics.grew(1)
                await asyncio.wait_for(statistics.finished(), 3)
                assert statistics.runs == 1
        finally:
            await admin.close()
        await statistics.close()


async def test_sqlite_is_left_to_its_own_planner(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'plain.db'}")
    statistics = FreshStatistics(engine, every_rows=1, at_most_every=0)
    statistics.grew(1_000_000)
    await statistics.finished()
    assert statistics.runs == 0
    await engine.dispose()
