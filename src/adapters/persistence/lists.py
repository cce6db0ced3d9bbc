"""A column matched against a list whose length changes from one batch to the next."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY


def one_of(dialect: str, column: Any, values: Collection[Any]) -> ColumnElement[bool]:
    """`column = ANY(:array)` on PostgreSQL: one bound array, so one statement text however many
    values (an IN list is rendered again for every length, and asyncpg prepares each text anew);
    `IN (...)` elsewhere."""
    if dialect == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))  # type: ignore[no-any-return]
    return column.in_(values)  # type: ignore[no-any-return]
