"""A batch's rows, and a list to match, as one JSON parameter on SQLite.

SQLAlchemy's executemany runs every value of every row through Python (a `construct_params` call
per row), and an expanding `IN` renders and prepares a new statement for each list length: on the
embedded profile that was the largest part of a drained batch's CPU. Here the rows travel as one
JSON array of arrays that SQLite takes apart in C (`INSERT ... SELECT ... FROM json_each(:rows)`),
and a list as one JSON array (`column IN (SELECT value FROM json_each(:list))`): one statement
text, prepared once, whatever the batch's size. The same shape as PostgreSQL's arrays (`unnest`,
`= ANY`) in `sql.py`. (A text with a NUL character would not survive SQLite's JSON functions;
none reaches a batch: every input that could carry one refuses it.)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import msgspec
from sqlalchemy import ColumnElement, LargeBinary, String, Table, TextClause, bindparam, func, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import CursorResult, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeDecorator

_DIALECT = sqlite.dialect()
_ENCODER = msgspec.json.Encoder()


class JsonList(TypeDecorator[list[Any]]):
    """A Python list bound as its JSON text."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: list[Any] | None, dialect: Dialect) -> str | None:
        return None if value is None else _ENCODER.encode(value).decode()


def json_one_of(column: Any, name: str) -> ColumnElement[bool]:
    """`column IN (SELECT value FROM json_each(:name))`, the list given at execution as `name`."""
    listed = func.json_each(bindparam(name, type_=JsonList())).table_valued("value")
    return column.in_(select(listed.c.value))  # type: ignore[no-any-return]


async def insert_json_rows(
    db: AsyncConnection, table: Table, rows: list[dict[str, Any]], returning: str | None = None
) -> CursorResult[*tuple[Any, ...]]:
    """Insert `rows` (dicts with the same keys, read by name) in their order, in one statement;
    with `returning`, the result has each row's `returning` column and id."""
    columns = tuple(rows[0])
    return await db.execute(_insert(table, columns, returning), {"rows": _json(table, columns, rows)})


def _json(table: Table, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
    """The rows as one JSON array of arrays, each value as SQLAlchemy's SQLite types store it
    (dates and times as their text)."""
    named = list(zip(columns, _processors(table, columns), strict=True))
    values = [
        [value if (value := row[column]) is None or into is None else into(value) for column, into in named]
        for row in rows
    ]
    return _ENCODER.encode(values).decode()


@functools.cache
def _insert(table: Table, columns: tuple[str, ...], returning: str | None) -> TextClause:
    taken = ", ".join(_taken(table, column, i) for i, column in enumerate(columns))
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT {taken} FROM json_each(:rows) ORDER BY key"
    if returning:
        sql += f" RETURNING {returning}, id"
    return text(sql)


def _taken(table: Table, column: str, index: int) -> str:
    value = f"value ->> {index}"
    # Bytes travel as their UTF-8 text (the queue's payloads are JSON) and are stored as bytes again.
    return f"CAST({value} AS BLOB)" if isinstance(table.c[column].type, LargeBinary) else value


@functools.cache
def _processors(table: Table, columns: tuple[str, ...]) -> tuple[Callable[[Any], Any] | None, ...]:
    return tuple(_processor(table, column) for column in columns)


def _processor(table: Table, column: str) -> Callable[[Any], Any] | None:
    type_ = table.c[column].type
    if isinstance(type_, LargeBinary):
        return _utf8
    return type_.dialect_impl(_DIALECT).bind_processor(_DIALECT)


def _utf8(value: bytes) -> str:
    return value.decode("utf-8")
