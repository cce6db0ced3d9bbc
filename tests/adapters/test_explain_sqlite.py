"""On SQLite (the embedded profile), registration's read of the day asks the partial index of
active customers for the batch's customers, not the day's active entries one by one: EXPLAIN
QUERY PLAN of the statement the repository really sends for a batch of 100 customers, on a day
of 3,000 entries."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from adapters.persistence.engine import make_engine
from adapters.persistence.schema import upgrade
from adapters.persistence.sql import SqlUnitOfWork
from domain.customer import Customer
from domain.store import Store
from domain.waiting_list import Registration

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
DAY = date(2026, 11, 25)


async def test_the_days_active_customers_are_read_by_the_partial_index(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'plan.db'}")
    await upgrade(engine)
    try:
        store = Store(id=0, name="Launch", waiting_open=True)
        async with SqlUnitOfWork(engine) as work:
            await work.stores.add(store)
            day = await work.waitings.load_list(store, DAY, [])
            for n in range(1, 3_001):
                day.register(Registration(f"t-{n}", Customer.user(f"u{n}"), 2, f"token-{n}-{'x' * 24}"), NOW)
            await work.waitings.save_list(day)
            await work.commit()
        sent: list[tuple[str, Any]] = []

        def keep(_conn: object, _cursor: object, statement: str, parameters: Any, *_: object) -> None:
            sent.append((statement, parameters))

        event.listen(engine.sync_engine, "before_cursor_execute", keep)
        try:
            async with SqlUnitOfWork(engine) as work:
                # A batch's customers: with a handful SQLite found the index unprompted, with 63 not.
                batch = ["user:u5", *(f"user:new-{n}" for n in range(99))]
                day = await work.waitings.load_list(store, DAY, batch)
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", keep)
        assert day.active_customers == {"user:u5"} and day.last_number == 3_000
        ((statement, parameters),) = sent
        async with engine.connect() as connection:
            plan = "\n".join(
                str(row[-1])
                for row in await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            )
        assert "USING INDEX uq_waitings_active_customer" in plan, plan
        assert "ix_waitings_store_day_status" not in plan, plan
    finally:
        await engine.dispose()
