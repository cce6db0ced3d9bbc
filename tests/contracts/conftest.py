"""Fixtures shared by the contract suites of the persistence ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from adapters.persistence.engine import make_engine
from adapters.persistence.memory import MemoryDatabase, MemoryUnitOfWork
from adapters.persistence.schema import upgrade
from adapters.persistence.sql import SqlUnitOfWork
from application.ports import UnitOfWork
from harness.postgres import emptied


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def uow(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Callable[[], UnitOfWork]]:
    """Units of work on each implementation: in memory, a migrated SQLite file, and the session's
    PostgreSQL database, emptied first."""
    if request.param == "memory":
        db = MemoryDatabase()
        yield lambda: MemoryUnitOfWork(db)
        return
    if request.param == "postgresql":
        async with emptied(request.getfixturevalue("postgres_url")) as engine:
            yield lambda: SqlUnitOfWork(engine)
        return
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'contract.db'}")
    await upgrade(engine)
    yield lambda: SqlUnitOfWork(engine)
    await engine.dispose()
