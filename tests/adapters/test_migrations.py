"""Alembic owns the schema: every revision applies and reverts, and head matches tables.py exactly."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, insert, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.persistence import rank_tree, schema
from adapters.persistence.engine import make_engine
from adapters.persistence.sql import ACTIVE_CUSTOMER, SqlWaitings, violated
from adapters.persistence.tables import metadata, stores, waiting_ranks, waiting_sequences, waitings
from harness.postgres import postgres_database

DAY = date(2026, 11, 25)


@pytest.fixture(scope="module")
def fresh_postgres() -> Iterator[str]:
    """A database of this module's own: these tests build and tear down the schema itself."""
    with postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}")
    else:
        engine = make_engine(request.getfixturevalue("fresh_postgres"))
        async with engine.begin() as connection:
            await connection.exec_driver_sql("DROP SCHEMA public CASCADE")
            await connection.exec_driver_sql("CREATE SCHEMA public")
    yield engine
    await engine.dispose()


def _drift(connection: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(connection), metadata))


async def test_upgrade_from_empty_reaches_head_with_no_drift_from_the_tables(engine: AsyncEngine) -> None:
    assert await schema.current(engine) is None
    await schema.upgrade(engine)
    assert await schema.current(engine) == schema.head()
    await schema.check(engine)
    async with engine.connect() as connection:
        assert await connection.run_sync(_drift) == []


async def test_each_step_down_and_up_again(engine: AsyncEngine) -> None:
    await schema.upgrade(engine)
    seen = [schema.head()]
    while (revision := await schema.current(engine)) is not None:
        await schema.downgrade(engine, "-1")
        below = await schema.current(engine)
        if below is not None:
            with pytest.raises(schema.SchemaNotCurrent, match=rf"\({below}\) is behind.*waitline migrate"):
                await schema.check(engine)
            seen.append(below)
        await schema.upgrade(engine, revision)
        async with engine.connect() as connection:
            assert await connection.run_sync(lambda sync: inspect(sync).has_table("waitings"))
        await schema.downgrade(engine, "-1")
    # Every revision once, from the head down to the first: 0005, 0004, ..., 0001.
    assert seen == [f"{n:04d}" for n in range(int(schema.head()), 0, -1)]
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    assert set(tables) <= {"alembic_version"}
    await schema.upgrade(engine)
    async with engine.connect() as connection:
        assert await connection.run_sync(_drift) == []


async def test_an_empty_database_is_told_to_migrate(engine: AsyncEngine) -> None:
    with pytest.raises(schema.SchemaNotCurrent, match="no Waitline schema yet: run `waitline migrate`"):
        await schema.check(engine)


async def test_a_first_release_database_keeps_its_rows_and_gets_the_day_scoped_rule(
    engine: AsyncEngine,
) -> None:
    """Made by the first release (create_all, no version table): taken as 0001, then upgraded."""
    await schema.upgrade(engine, "0001")
    async with engine.begin() as connection:
        await connection.exec_driver_sql("DROP TABLE alembic_version")
        store_id = (
            await connection.execute(insert(stores).values(_store()).returning(stores.c.id))
        ).scalar_one()
        await connection.execute(insert(waitings).values(_waiting(store_id, DAY, 1, "trace-1")))

    await schema.upgrade(engine)

    assert await schema.current(engine) == schema.head()
    async with engine.begin() as connection:
        # The same customer, still WAITING from yesterday, may hold one today.
        await connection.execute(
            insert(waitings).values(_waiting(store_id, date(2026, 11, 26), 1, "trace-2"))
        )
        kept = (await connection.execute(select(waitings.c.trace_id).order_by(waitings.c.id))).scalars().all()
    assert kept == ["trace-1", "trace-2"]


async def test_the_kept_counts_and_rank_tree_are_filled_from_the_rows_there_were(engine: AsyncEngine) -> None:
    await schema.upgrade(engine, "0003")
    statuses = ["WAITING", "CALLED", "WAITING", "SEATED", "WAITING"]
    async with engine.begin() as connection:
        store_id = (
            await connection.execute(insert(stores).values(_store()).returning(stores.c.id))
        ).scalar_one()
        await connection.exec_driver_sql(
            f"INSERT INTO waiting_sequences (store_id, business_date, last_number) VALUES ({store_id}, '{DAY}', 5)"
        )
        for number, status in enumerate(statuses, 1):
            row = _waiting(store_id, DAY, number, f"trace-{number}", customer=f"user:{number}")
            await connection.execute(insert(waitings).values({**row, "status": status}))

    await schema.upgrade(engine)

    async with engine.connect() as connection:
        kept = (
            await connection.execute(
                select(waiting_sequences.c.active_count, waiting_sequences.c.waiting_count)
            )
        ).one()
        assert tuple(kept) == (4, 3)
        repository = SqlWaitings(connection)
        below = [await repository.count_waiting(store_id, DAY, below=n) for n in range(1, 7)]
    assert below == [0, 1, 1, 2, 2, 3]


async def test_the_rank_tree_is_built_again_in_blocks_and_back(engine: AsyncEngine) -> None:
    """0010 turns the tree of a node a place into one of a node a block, from the rows; its
    downgrade turns it back. Either way the ranks read the same."""
    await schema.upgrade(engine, "0009")
    places = [*range(1, 150), 300, 301]
    async with engine.begin() as connection:
        store_id = (
            await connection.execute(insert(stores).values(_store()).returning(stores.c.id))
        ).scalar_one()
        for place in places:
            row = _waiting(store_id, DAY, place, f"trace-{place}", customer=f"user:{place}")
            await connection.execute(insert(waitings).values({**row, "place": place}))
        tree = [
            {"store_id": store_id, "business_date": DAY, "node": node, "waiting": count}
            for node, count in rank_tree.changes(((p, 1) for p in places), block=1).items()
        ]
        await connection.execute(insert(waiting_ranks), tree)

    async def nodes() -> dict[int, int]:
        async with engine.connect() as connection:
            rows = await connection.execute(select(waiting_ranks.c.node, waiting_ranks.c.waiting))
            return dict(rows.all())

    await schema.upgrade(engine)
    assert await nodes() == rank_tree.changes((p, 1) for p in places)
    async with engine.connect() as connection:
        repository = SqlWaitings(connection)
        ranked = [await repository.count_waiting(store_id, DAY, below=n) for n in (1, 64, 65, 130, 301, 400)]
    assert ranked == [0, 63, 64, 129, 150, 151]
    await schema.downgrade(engine, "0009")
    assert await nodes() == rank_tree.changes(((p, 1) for p in places), block=1)


async def test_the_database_alone_refuses_what_the_rules_forbid(engine: AsyncEngine) -> None:
    """Bypassing the lock, the domain and the repositories: the constraints still hold, by name."""
    await schema.upgrade(engine)
    async with engine.begin() as connection:
        store_id = (
            await connection.execute(insert(stores).values(_store()).returning(stores.c.id))
        ).scalar_one()
        await connection.execute(insert(waitings).values(_waiting(store_id, DAY, 1, "trace-1")))
    refused = {
        "uq_waitings_number": _waiting(store_id, DAY, 1, "trace-2", customer="user:other"),
        "uq_waitings_trace_id": _waiting(store_id, DAY, 2, "trace-1", customer="user:other"),
        ACTIVE_CUSTOMER: _waiting(store_id, DAY, 2, "trace-3"),
    }
    for constraint, row in refused.items():
        with pytest.raises(IntegrityError) as error:
            async with engine.begin() as connection:
                await connection.execute(insert(waitings).values(row))
        assert violated(error.value) == constraint


def _store() -> dict[str, Any]:
    return {"name": "Gamja", "time_zone": "Asia/Seoul", "waiting_open": True, "max_party_size": 10}


def _waiting(
    store_id: int, day: date, number: int, trace_id: str, customer: str = "user:alice"
) -> dict[str, Any]:
    return {
        "store_id": store_id,
        "business_date": day,
        "number": number,
        "channel": "USER",
        "customer_key": customer,
        "user_id": customer.removeprefix("user:"),
        "party_size": 2,
        "status": "WAITING",
        "trace_id": trace_id,
        "status_token": f"token-{trace_id}-secret-part",
        "status_selector": f"{number}-{trace_id}-{customer}"[:16],
        "created_at": datetime(2026, 11, 25, 3, tzinfo=UTC),
    }
