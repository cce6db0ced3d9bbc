"""Idempotency keys (the `IdempotencyKeys` port): in the store's database, or in memory.

On the database, each call is one statement in a transaction of its own, apart from any unit
of work: the claim must be seen by every other process before the request is worked, and the
answer kept whether or not the registration's own transaction was.
"""

from __future__ import annotations

import heapq
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import RowMapping, delete, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.persistence.tables import idempotency_keys as table
from application.ports import KeptAnswer, KeyRecord


class MemoryIdempotencyKeys:
    """The same contract in a dict; no call awaits, so each is atomic for asyncio."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], KeyRecord] = {}
        # (expires_at, caller, key), soonest first; an entry whose record changed is skipped.
        self._expiries: list[tuple[datetime, str, str]] = []

    async def add(self, record: KeyRecord) -> bool:
        if (record.caller, record.key) in self._records:
            return False
        self._keep(record)
        return True

    async def get(self, caller: str, key: str) -> KeyRecord | None:
        return self._records.get((caller, key))

    async def replace(self, claim: str, record: KeyRecord) -> bool:
        kept = self._records.get((record.caller, record.key))
        if kept is None or kept.claim != claim:
            return False
        self._keep(record, kept)
        return True

    async def remove(self, caller: str, key: str, claim: str) -> None:
        kept = self._records.get((caller, key))
        if kept is not None and kept.claim == claim:
            del self._records[caller, key]

    async def remove_expired(self, now: datetime, most: int) -> int:
        removed = 0
        while removed < most and self._expiries and self._expiries[0][0] <= now:
            expires_at, caller, key = heapq.heappop(self._expiries)
            kept = self._records.get((caller, key))
            if kept is not None and kept.expires_at == expires_at:
                del self._records[caller, key]
                removed += 1
        return removed

    def _keep(self, record: KeyRecord, replacing: KeyRecord | None = None) -> None:
        self._records[record.caller, record.key] = record
        if replacing is None or replacing.expires_at != record.expires_at:
            heapq.heappush(self._expiries, (record.expires_at, record.caller, record.key))


class SqlIdempotencyKeys:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, record: KeyRecord) -> bool:
        insert_ = pg_insert if self._engine.dialect.name == "postgresql" else sqlite_insert
        statement = (
            insert_(table)
            .values(_row(record))
            .on_conflict_do_nothing(index_elements=[table.c.caller, table.c.idempotency_key])
        )
        async with self._engine.begin() as connection:
            return (await connection.execute(statement)).rowcount == 1

    async def get(self, caller: str, key: str) -> KeyRecord | None:
        query = select(table).where(*_of(caller, key))
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).mappings().first()
        return _record(row) if row else None

    async def replace(self, claim: str, record: KeyRecord) -> bool:
        statement = update(table).where(*_of(record.caller, record.key), table.c.claim == claim)
        async with self._engine.begin() as connection:
            return (await connection.execute(statement.values(_row(record)))).rowcount == 1

    async def remove(self, caller: str, key: str, claim: str) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(delete(table).where(*_of(caller, key), table.c.claim == claim))

    async def remove_expired(self, now: datetime, most: int) -> int:
        soonest = (
            select(table.c.caller, table.c.idempotency_key)
            .where(table.c.expires_at <= _utc(now))
            .order_by(table.c.expires_at)
            .limit(most)
        )
        statement = delete(table).where(tuple_(table.c.caller, table.c.idempotency_key).in_(soonest))
        async with self._engine.begin() as connection:
            return (await connection.execute(statement)).rowcount


def _of(caller: str, key: str) -> tuple[Any, Any]:
    return table.c.caller == caller, table.c.idempotency_key == key


def _utc(moment: datetime) -> datetime:
    """SQLite keeps no offset: store UTC, and read it back as UTC."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _row(record: KeyRecord) -> dict[str, Any]:
    answer = record.answer
    return {
        "caller": record.caller,
        "idempotency_key": record.key,
        "fingerprint": record.fingerprint,
        "request_id": record.request_id,
        "claim": record.claim,
        "expires_at": _utc(record.expires_at),
        "held_until": _utc(record.held_until) if record.held_until else None,
        "status": answer.status if answer else None,
        "media_type": answer.media_type if answer else None,
        "body": answer.body if answer else None,
    }


def _record(row: RowMapping) -> KeyRecord:
    answer = None
    if row["status"] is not None:
        answer = KeptAnswer(status=row["status"], media_type=row["media_type"], body=bytes(row["body"]))
    return KeyRecord(
        caller=row["caller"],
        key=row["idempotency_key"],
        fingerprint=row["fingerprint"],
        request_id=row["request_id"],
        claim=row["claim"],
        expires_at=_utc(row["expires_at"]),
        held_until=_utc(row["held_until"]) if row["held_until"] else None,
        answer=answer,
    )
