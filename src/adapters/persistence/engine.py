"""Engines: SQLite for the embedded profile (one connection, so writers never collide)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from adapters.persistence.tables import metadata


def make_engine(url: str, *, pool_size: int = 10, pool_timeout: float = 30.0) -> AsyncEngine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url, pool_timeout)
    return create_async_engine(url, pool_size=pool_size, pool_timeout=pool_timeout, pool_pre_ping=True)


def _sqlite_engine(url: str, pool_timeout: float) -> AsyncEngine:
    # synchronous=FULL: a commit (a 202 QUEUED among them) survives a power cut, not just a crash.
    # SQLite has one writer at a time; a single shared connection turns "database is locked"
    # into an orderly wait in the pool.
    engine = create_async_engine(
        url, poolclass=AsyncAdaptedQueuePool, pool_size=1, max_overflow=0, pool_timeout=pool_timeout
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=5000"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    return engine


async def migrate(engine: AsyncEngine) -> None:
    """Create what is missing. Versioned migrations come with PostgreSQL (issue 3)."""
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
