"""A batch's new rows into PostgreSQL by COPY, within the transaction at hand.

COPY is the cheapest way in for a batch: binary rows, no statement to plan, and no array per
column for the driver to check element by element. Measured on 200 waitings: 3.2 ms and 0.5 ms of
our CPU against 4.1 ms and 1.0 ms for `INSERT ... SELECT FROM unnest(...) RETURNING`.

Errors come out as SQLAlchemy's, as if the statement had gone through it: a refused row as an
IntegrityError naming its constraint, a server or connection failure as a DBAPIError that
`failures.unavailable` recognises (and the connection is invalidated, not pooled again).
"""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

NEW_IDS = "SELECT nextval(pg_get_serial_sequence($1, 'id')) FROM generate_series(1, $2)"


async def copy_rows(
    db: AsyncConnection, table: Table, rows: list[dict[str, Any]], *, new_ids: bool = False
) -> list[int]:
    """COPY `rows` (dicts with the same keys) into `table`; with `new_ids`, each row first gets an
    id from the table's sequence, and the ids come back in the rows' order."""
    raw = (await db.get_raw_connection()).driver_connection
    assert raw is not None
    if not raw.is_in_transaction():
        # SQLAlchemy begins on a connection's first statement: COPY must not run outside it.
        await db.exec_driver_sql("SELECT 1")
    columns, records = list(rows[0]), [tuple(row.values()) for row in rows]
    statement = f"COPY {table.name}"
    try:
        ids: list[int] = []
        if new_ids:
            ids = [row[0] for row in await raw.fetch(NEW_IDS, table.name, len(rows))]
            columns.insert(0, "id")
            records = [(id_, *record) for id_, record in zip(ids, records, strict=True)]
        await raw.copy_records_to_table(table.name, records=records, columns=columns)
    except asyncpg.IntegrityConstraintViolationError as error:
        raise IntegrityError(statement, None, error) from error
    except asyncpg.PostgresError as error:
        raise DBAPIError(statement, None, error) from error
    except (TimeoutError, asyncpg.InterfaceError, OSError) as error:
        await db.invalidate()
        raise DBAPIError(statement, None, error, connection_invalidated=True) from error
    return ids
