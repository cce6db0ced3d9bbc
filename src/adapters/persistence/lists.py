"""A column matched against a list whose length changes from one batch to the next."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY

from adapters.persistence.json_rows import json_one_of


def one_of(dialect: str, column: Any, name: str) -> ColumnElement[bool]:
    """`column = ANY(:name)` on PostgreSQL: one bound array, so one statement text however many
    values (an IN list is rendered again for every length, and asyncpg prepares each text anew);
    on SQLite one bound JSON array, `IN (SELECT value FROM json_each(:name))`, for the same reason.
    The list is given at execution as the parameter `name`, so a statement built once serves every
    batch."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type)))  # type: ignore[no-any-return]
    return json_one_of(column, name)
