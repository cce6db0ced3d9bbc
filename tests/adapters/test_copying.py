"""On PostgreSQL a batch's rows go in by COPY: its failures must read as SQLAlchemy's would, so that
a lost database answers 503 and the pool recovers, and a refused row maps to a domain error."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from adapters.persistence.failures import unavailable
from adapters.persistence.sql import SqlUnitOfWork
from application.requests import RequestState, RequestStatus
from harness.postgres import emptied


def _outcome(trace_id: str, store_id: object = 1) -> RequestStatus:
    return RequestStatus(trace_id, store_id, RequestState.REJECTED, reason="WAITING_CLOSED")  # type: ignore[arg-type]


async def _copy_waiting_for_lock(admin: asyncpg.Connection) -> int:
    """The backend whose COPY waits for the table the test holds locked (SHARE: reads pass, so the
    driver's look at the table's columns does, and COPY's ROW EXCLUSIVE waits).

    The admin asks inside its locking transaction, where PostgreSQL shows pg_stat_activity as it
    was at the transaction's first look: the snapshot is dropped before each look, or a first look
    made before the COPY began would be all it ever saw (the test failed so, once, under load)."""
    for _ in range(500):
        await admin.execute("SELECT pg_stat_clear_snapshot()")
        pid = await admin.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND query LIKE 'COPY%registration_requests%' AND wait_event_type = 'Lock'"
        )
        if pid is not None:
            return int(pid)
        await asyncio.sleep(0.01)
    raise AssertionError("no COPY came to wait for the lock")


async def test_a_connection_lost_during_copy_reads_unavailable_and_the_pool_drops_the_others(
    postgres_url: str,
) -> None:
    """The server restarted: the COPY's connection and the idle ones in the pool are all gone. The
    COPY fails as unavailable, with the lost connection as its cause, and the next unit of work,
    within the second in which the pool would not ping, gets a fresh connection."""
    dsn = make_url(postgres_url).set(drivername="postgresql").render_as_string(hide_password=False)
    async with emptied(postgres_url) as engine:
        async with SqlUnitOfWork(engine) as one, SqlUnitOfWork(engine) as two:  # two pooled connections
            await one.requests.decided(["one"])
            await two.requests.decided(["two"])
        admin = await asyncpg.connect(dsn)
        try:
            async with admin.transaction():
                await admin.execute("LOCK TABLE registration_requests IN SHARE MODE")

                async def record() -> None:
                    async with SqlUnitOfWork(engine) as uow:
                        await uow.requests.record(_outcome("lost"))
                        await uow.commit()

                recording = asyncio.create_task(record())
                await _copy_waiting_for_lock(admin)
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                with pytest.raises(DBAPIError) as raised:
                    await recording
        finally:
            await admin.close()
        assert raised.value.connection_invalidated and unavailable(raised.value)
        assert isinstance(raised.value.orig, asyncpg.ConnectionDoesNotExistError)
        async with SqlUnitOfWork(engine) as uow:
            assert await uow.requests.decided(["lost"]) == {}
            await uow.requests.record(_outcome("after"))
            await uow.commit()


async def test_a_value_the_driver_cannot_send_fails_the_statement_not_the_connection(
    postgres_url: str,
) -> None:
    async with emptied(postgres_url) as engine:
        with pytest.raises(DBAPIError) as raised:
            async with SqlUnitOfWork(engine) as uow:
                await uow.requests.record(_outcome("bad", store_id="not a number"))
        assert not unavailable(raised.value) and not raised.value.connection_invalidated
        async with SqlUnitOfWork(engine) as uow:
            await uow.requests.record(_outcome("good"))
            await uow.commit()
        async with SqlUnitOfWork(engine) as uow:
            assert set(await uow.requests.decided(["bad", "good"])) == {"good"}
