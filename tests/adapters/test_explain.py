"""On PostgreSQL, the reads behind admission, ranks, the public view and the staff list's page use
indexes: EXPLAIN of the statements the repository really sends, on a day of 20,000 entries
beside 500 other stores' last ten days."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.persistence.sql import SqlUnitOfWork
from domain.customer import Customer
from domain.store import Store
from domain.waiting_list import Registration
from harness.postgres import emptied

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
DAY = date(2026, 11, 25)
ENTRIES = 20_000
OTHER_STORES = 500


@pytest.fixture
async def filled(postgres_url: str) -> AsyncIterator[tuple[AsyncEngine, Store]]:
    async with emptied(postgres_url) as engine:
        store = Store(id=0, name="Launch", waiting_open=True)
        async with SqlUnitOfWork(engine) as work:
            await work.stores.add(store)
            day = await work.waitings.load_list(store, DAY, [])
            for n in range(1, ENTRIES + 1):
                registration = Registration(f"t-{n}", Customer.user(f"u{n}"), 2, f"token-{n}-{'x' * 24}")
                day.register(registration, NOW)
            await work.waitings.save_list(day)
            await work.commit()
        async with engine.begin() as connection:
            # Other stores' days beside it, as a real database has: a table of one row is read
            # whole whatever its indexes.
            await connection.execute(
                text(
                    "INSERT INTO stores (name, time_zone, waiting_open, max_party_size) "
                    "SELECT 'Other', 'Asia/Seoul', true, 10 FROM generate_series(1, :count)"
                ),
                {"count": OTHER_STORES},
            )
            await connection.execute(
                text(
                    "INSERT INTO waiting_sequences (store_id, business_date, last_number) "
                    "SELECT id, CAST(:day AS date) - n, 1 FROM stores, generate_series(0, 9) AS n WHERE id <> :store"
                ),
                {"day": DAY, "store": store.id},
            )
            await connection.execute(
                text(
                    "INSERT INTO waiting_ranks (store_id, business_date, node, waiting) "
                    "SELECT store_id, business_date, node, 1 FROM waiting_sequences, "
                    "generate_series(1, 16) AS node WHERE store_id <> :store"
                ),
                {"store": store.id},
            )
            await connection.execute(text("ANALYZE"))
        yield engine, store


async def test_counts_ranks_pages_and_the_pace_read_by_index_not_by_scanning_the_day(
    filled: tuple[AsyncEngine, Store],
) -> None:
    engine, store = filled
    async with engine.connect() as connection:
        sent: list[tuple[str, Any]] = []

        def keep(_conn: object, _cursor: object, statement: str, parameters: Any, *_: object) -> None:
            sent.append((statement, parameters))

        event.listen(engine.sync_engine, "before_cursor_execute", keep)
        try:
            work = SqlUnitOfWork(engine)
            async with work:
                await work.waitings.load_list(store, DAY, ["user:u5"])
                await work.waitings.count_waiting(store.id, DAY)
                await work.waitings.count_waiting(store.id, DAY, below=ENTRIES - 7)
                await work.waitings.of_store(store.id, DAY, after=100, limit=51)
                await work.waitings.last_calls(store.id, DAY, 20)
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", keep)
        plans = []
        for statement, parameters in sent:
            if statement.lstrip().upper().startswith("SELECT"):
                rows = await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
                plans.append("\n".join(row[0] for row in rows))
    assert len(plans) == 5, sent
    for plan in plans:
        assert "Seq Scan" not in plan, plan
    load_list, kept_count, rank, page, calls = plans
    assert "waiting_sequences_pkey" in load_list and "uq_waitings_active_customer" in load_list, load_list
    assert "waiting_sequences_pkey" in kept_count, kept_count
    assert "waiting_ranks_pkey" in rank, rank
    assert "ix_waitings_store_day_place" in page, page  # pages go in queue order
    assert "ix_waitings_store_day_called" in calls, calls  # the estimate's pace: the day's last calls
