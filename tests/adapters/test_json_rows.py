"""On SQLite a batch's rows travel as one JSON parameter (adapters/persistence/json_rows.py): they
must be stored exactly as SQLAlchemy's own INSERT stores them (same text for dates and times,
same types, bytes as bytes), in their order; and a list matched through json_each must still be
looked up by its index, not scanned."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.persistence.engine import make_engine
from adapters.persistence.json_rows import insert_json_rows, json_one_of
from adapters.persistence.schema import upgrade
from adapters.persistence.tables import queued_registrations, registration_requests, stores, waitings


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'rows.db'}")
    await upgrade(engine)
    async with engine.begin() as connection:
        await connection.execute(
            insert(stores).values(id=1, name="S", time_zone="UTC", waiting_open=True, max_party_size=8)
        )
    yield engine
    await engine.dispose()


texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).flatmap(
    lambda naive: st.sampled_from(
        [naive.replace(tzinfo=UTC), naive.replace(tzinfo=timezone(timedelta(hours=9)))]
    )
)


@st.composite
def waiting_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 5))
    rows = []
    for n in range(count):
        rows.append(
            {
                "store_id": 1,
                "business_date": draw(st.dates(date(2000, 1, 1), date(2100, 1, 1))),
                "number": n + 1,
                "channel": "APP",
                "customer_key": f"{n}:{draw(texts)}",
                "user_id": draw(st.none() | texts),
                "name": draw(st.none() | texts),
                "phone_number": draw(st.none() | st.from_regex(r"\A01[0-9]{8,9}\Z")),
                "party_size": draw(st.integers(1, 2**31 - 1)),
                "status": "WAITING",
                "trace_id": f"{draw(texts)}-{n}",
                "status_token": draw(texts),
                "status_selector": f"{n}-{draw(texts)}",
                "created_at": draw(moments),
                "called_at": draw(st.none() | moments),
                "place": n + 1,
                "postpones": 0,
            }
        )
    return rows


async def _stored(engine: AsyncEngine, table: str, key: str) -> list[tuple[Any, ...]]:
    """Every column's SQL literal (quote(): its type shows), in the key's order; ids left out."""
    async with engine.connect() as connection:
        names = [row[1] for row in await connection.exec_driver_sql(f"PRAGMA table_info({table})")]
        quoted = ", ".join(f"quote({name})" for name in names if name not in ("id", "seq"))
        result = await connection.exec_driver_sql(f"SELECT {quoted} FROM {table} ORDER BY {key}")
        return [tuple(row) for row in result]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=waiting_rows())
async def test_waitings_are_stored_as_sqlalchemys_insert_stores_them(
    engine: AsyncEngine, rows: list[dict[str, Any]]
) -> None:
    async with engine.begin() as connection:
        await connection.execute(delete(waitings))  # an earlier example that failed may have left some
        await connection.execute(insert(waitings), rows)
    by_sqlalchemy = await _stored(engine, "waitings", "id")
    async with engine.begin() as connection:
        await connection.execute(delete(waitings))
        returned = await insert_json_rows(connection, waitings, rows, "number")
        numbers = dict(returned.all())
    by_json = await _stored(engine, "waitings", "id")
    async with engine.begin() as connection:
        ids = dict((await connection.execute(select(waitings.c.number, waitings.c.id))).all())
        await connection.execute(delete(waitings))
    assert by_json == by_sqlalchemy
    assert numbers == ids  # each row's own id, by its number


async def test_queued_payloads_stay_bytes_and_rows_keep_their_order(engine: AsyncEngine) -> None:
    rows = [
        {"partition": n % 4, "store_id": 1, "payload": f'{{"n":{n},"name":"é\\"{n}"}}'.encode()}
        for n in range(300)
    ]
    async with engine.begin() as connection:
        await insert_json_rows(connection, queued_registrations, rows)
        stored = (
            await connection.execute(select(queued_registrations).order_by(queued_registrations.c.seq))
        ).all()
        await connection.execute(delete(queued_registrations))
    assert [row.payload for row in stored] == [row["payload"] for row in rows]
    assert all(row.dead is False and row.attempts == 0 for row in stored)  # the columns' defaults


async def test_a_list_matched_through_json_each_is_looked_up_by_the_index(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            insert(registration_requests),
            [{"trace_id": f"t-{n}", "store_id": 1, "state": "REGISTERED"} for n in range(2_000)],
        )
    for statement, parameters in [
        (
            select(registration_requests).where(json_one_of(registration_requests.c.trace_id, "ids")),
            {"ids": ["t-5", "t-1999", "nobody"]},
        ),
        (
            delete(queued_registrations).where(json_one_of(queued_registrations.c.seq, "ids")),
            {"ids": [1, 2, 3]},
        ),
    ]:
        async with engine.connect() as connection:
            compiled = statement.compile(connection.sync_connection)
            sql = str(compiled)
            bound = compiled.construct_params(parameters)
            values = tuple(
                compiled.binds[name].type.process_bind_param(bound[name], connection.dialect)  # type: ignore[attr-defined]
                for name in compiled.positiontup or []
            )
            plan = " | ".join(
                str(row[-1]) for row in await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", values)
            )
            if statement.is_select:
                found = (await connection.execute(statement, parameters)).all()
                assert sorted(row.trace_id for row in found) == ["t-1999", "t-5"]
        assert "SCAN registration_requests" not in plan and "SCAN queued_registrations" not in plan, plan
