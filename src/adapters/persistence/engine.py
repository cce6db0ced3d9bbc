"""Engines: PostgreSQL (asyncpg, pooled, every statement bounded in time) and embedded SQLite."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool


@dataclass(frozen=True)
class Limits:
    """How many connections, and how long to wait for one, for a connect and for a statement."""

    pool_size: int = 10
    pool_timeout: float = 5.0
    connect_timeout: float = 5.0
    statement_timeout: float | None = 5.0


def make_engine(url: str, limits: Limits = Limits()) -> AsyncEngine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url, limits)
    engine = create_async_engine(
        url,
        pool_size=limits.pool_size,
        pool_timeout=limits.pool_timeout,
        # The connection used last is used next: its prepared statements and type lookups are
        # warm (first-in-first-out cycled a worker through all ten, each preparing anew).
        pool_use_lifo=True,
        connect_args=_asyncpg_arguments(limits),
    )
    _ping_when_idle(engine)
    return engine


# A connection back in use within this many seconds is not pinged first.
IDLE_BEFORE_PING = 1.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    """SQLAlchemy's pool_pre_ping, for connections that sat idle only: its ping on asyncpg is three
    round trips (BEGIN, `;`, ROLLBACK), on every checkout, which was a third of a busy worker's
    round trips. A connection in steady use proves itself; one that broke while in use fails
    its statement, which answers 503 and has the pool drop every connection made before."""
    dialect = engine.sync_engine.dialect

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("idle_since", 0.0) < IDLE_BEFORE_PING:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            # The pool drops this connection and checks out another (a fresh one if need be).
            raise exc.DisconnectionError(f"the idle connection is gone: {error!r}") from error


def _asyncpg_arguments(limits: Limits) -> dict[str, Any]:
    # asyncpg prepares every statement, and after five runs PostgreSQL may switch to a generic
    # plan that cannot see the values: registration's IN list of customers is then compared row by
    # row instead of hashed (measured: 4.7k -> 7.7k decided/s). Planning each time is cheaper.
    settings = {"plan_cache_mode": "force_custom_plan"}
    arguments: dict[str, Any] = {"timeout": limits.connect_timeout, "server_settings": settings}
    if limits.statement_timeout is not None:
        # The server cancels a slow statement; the client's own timeout, a little later, covers a
        # server that stopped answering altogether.
        settings["statement_timeout"] = str(round(limits.statement_timeout * 1000))
        arguments["command_timeout"] = limits.statement_timeout + 0.5
    return arguments


def _sqlite_engine(url: str, limits: Limits) -> AsyncEngine:
    # synchronous=FULL: a commit (a 202 QUEUED among them) survives a power cut, not just a crash.
    # SQLite has one writer at a time; a single shared connection turns "database is locked"
    # into an orderly wait in the pool.
    engine = create_async_engine(
        url, poolclass=AsyncAdaptedQueuePool, pool_size=1, max_overflow=0, pool_timeout=limits.pool_timeout
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=5000"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    return engine
