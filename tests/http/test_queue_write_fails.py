"""The embedded queue's insert failing (a full disk, a broken table): V3 answers 503, nothing queued.

The failure is the database's own: a trigger refuses every insert into the queue's table.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.persistence.tables import registration_requests
from entrypoints.container import Container
from harness.httpkit import Api, Tokens, assert_problem

REFUSE = {
    "sqlite": [
        "CREATE TRIGGER refuse_queued BEFORE INSERT ON queued_registrations "
        "BEGIN SELECT RAISE(ABORT, 'no space left on device'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_queued() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'no space left on device'; END $$",
        "CREATE TRIGGER refuse_queued BEFORE INSERT ON queued_registrations "
        "FOR EACH ROW EXECUTE FUNCTION refuse_queued()",
    ],
}
ALLOW = {
    "sqlite": ["DROP TRIGGER refuse_queued"],
    "postgresql": [
        "DROP TRIGGER refuse_queued ON queued_registrations",
        "DROP FUNCTION refuse_queued()",
    ],
}


@contextlib.asynccontextmanager
async def queue_inserts_refused(engine: AsyncEngine) -> AsyncIterator[None]:
    dialect = engine.dialect.name
    async with engine.begin() as connection:
        for statement in REFUSE[dialect]:
            await connection.execute(text(statement))
    try:
        yield
    finally:
        async with engine.begin() as connection:
            for statement in ALLOW[dialect]:
                await connection.execute(text(statement))


async def test_a_queue_insert_that_fails_is_503_and_nothing_is_queued(
    client: httpx.AsyncClient, container: Container, store: dict[str, Any], api: Api, tokens: Tokens
) -> None:
    async with queue_inserts_refused(container.engine()):
        refused = await api.join_v3(store["id"], "a")
        assert_problem(refused, 503, "UNAVAILABLE")
        assert "retry-after" in refused.headers
        # Decided as refused, so that the write, should it arrive after all, changes nothing.
        async with container.engine().connect() as connection:
            decided = (await connection.execute(select(registration_requests.c.reason))).all()
        assert decided == [("UNAVAILABLE",)]
        # V2 needs no queue write: it goes on meanwhile.
        assert (await api.join_v2(store["id"], "b")).json()["number"] == 1

    listed = await client.get(f"/stores/{store['id']}/waitings", headers=tokens.admin)
    assert [w["userId"] for w in listed.json()["items"]] == ["b"]
    # The refused attempt left no trace: the same customer is accepted now.
    trace = (await api.join_v3(store["id"], "a")).json()["traceId"]
    outcome = await api.outcome(trace, tokens.admin)
    assert (outcome["status"], outcome["waiting"]["number"]) == ("REGISTERED", 2)
