"""A batch's new rows into PostgreSQL by COPY, within the transaction at hand.

COPY is the cheapest way in for a batch: binary rows, no statement to plan, and no array per
column for the driver to check element by element. Measured on 200 waitings: 3.2 ms and 0.5 ms of
our CPU against 4.1 ms and 1.0 ms for `INSERT ... SELECT FROM unnest(...) RETURNING`.

Errors come out as SQLAlchemy's, as if the statement had gone through it: a refused row as an
IntegrityError naming its constraint, a server or connection failure as a DBAPIError that
`failures.unavailable` recognises (a connection that is gone is invalidated, and the pool drops
the others made before it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection


async def copy_rows(
    db: AsyncConnection, table: Table, columns: Sequence[str], records: list[tuple[Any, ...]]
) -> None:
    """COPY `records` (tuples of the `columns`' values, in that order) into `table`."""
    raw = (await db.get_raw_connection()).driver_connection
    assert raw is not None
    if not raw.is_in_transaction():
        # SQLAlchemy begins on a connection's first statement: COPY must not run outside it.
        await db.exec_driver_sql("SELECT 1")
    try:
        await raw.copy_records_to_table(table.name, records=records, columns=columns)
    except Exception as error:
        raise await _translated(db, raw, f"COPY {table.name}", error) from error


async def _translated(db: AsyncConnection, raw: Any, statement: str, error: Exception) -> Exception:
    """The error SQLAlchemy would have raised for the same failure."""
    if raw.is_closed():
        # The server or the network ended the connection: as SQLAlchemy does on a disconnect, every
        # pooled connection made before is dropped too (the server likely restarted).
        await db.invalidate()
        await db.engine.dispose()
        return DBAPIError(statement, None, error, connection_invalidated=True)
    if isinstance(error, asyncpg.InterfaceError | OSError | TimeoutError):
        await db.invalidate()  # no answer in time, or a protocol state that cannot be trusted
        return DBAPIError(statement, None, error, connection_invalidated=True)
    if isinstance(error, asyncpg.IntegrityConstraintViolationError):
        return IntegrityError(statement, None, error)
    # Any other refusal by the server (SQLSTATE kept for `failures.unavailable`), or a value the
    # driver could not encode: the statement failed, the connection is sound.
    return DBAPIError(statement, None, error)
