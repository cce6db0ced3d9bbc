"""The composition root: every collaborator named once, adapters chosen here and nowhere else."""

from __future__ import annotations

from collections.abc import AsyncIterator

from dependency_injector import containers, providers
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.clock import SystemClock
from adapters.lock.local import LocalLock
from adapters.lock.redis import RedisLock
from adapters.notify.local import LocalNotifier
from adapters.persistence import schema
from adapters.persistence.engine import Limits, make_engine
from adapters.persistence.sql import SqlUnitOfWork
from adapters.queue.sql import SqlRegistrationQueue
from adapters.status.local import LocalRequestStatuses
from application.announcements import Announcer
from application.live import LiveUpdates
from application.ports import Lock
from application.queries import Queries
from application.registration import (
    LockTimes,
    NewRequests,
    ProcessRegistrations,
    RegisterWaiting,
    SubmitRegistration,
)
from application.stores import CreateStore, SwitchWaiting
from application.waiting_actions import MoveWaiting
from entrypoints.settings import Settings


def engine_for(settings: Settings, limits: Limits | None = None) -> AsyncEngine:
    if settings.embedded_database:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return make_engine(settings.sqlalchemy_url(), limits or settings.database_limits())


async def database(engine: AsyncEngine, settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The schema checked on start (the embedded file is brought up to date); the pool closed on shutdown.

    A configured database is migrated by an operator's `waitline migrate`, never by replicas
    as they start.
    """
    try:
        if settings.embedded_database:
            await schema.upgrade(engine)
        else:
            await schema.check(engine)
    except BaseException:
        await engine.dispose()
        raise
    try:
        yield engine
    finally:
        await engine.dispose()


def store_lock(settings: Settings) -> Lock:
    """The stores' lock: on Redis when configured (shared by every process), else in-process."""
    if settings.redis_url:
        return RedisLock.from_url(settings.redis_url, prefix=settings.redis_prefix)
    return LocalLock()


async def lock_connections(lock: Lock) -> AsyncIterator[None]:
    """Closed on shutdown. (A resource of its own: providers that depend on an async resource
    hand out futures, so the lock itself stays a plain singleton.)"""
    try:
        yield
    finally:
        if isinstance(lock, RedisLock):
            await lock.close()


async def start(container: Container) -> None:
    """Open the container's resources (the database: its schema checked, pooled)."""
    opened = container.init_resources()
    if opened is not None:
        await opened


async def stop(container: Container) -> None:
    closed = container.shutdown_resources()
    if closed is not None:
        await closed


class Container(containers.DeclarativeContainer):
    settings = providers.Singleton(Settings)

    engine = providers.Singleton(engine_for, settings)
    database = providers.Resource(database, engine, settings)
    uow = providers.Factory(SqlUnitOfWork, engine)
    clock = providers.Singleton(SystemClock)
    lock = providers.Singleton(store_lock, settings)
    lock_closed = providers.Resource(lock_connections, lock)
    notifier = providers.Singleton(LocalNotifier)
    statuses = providers.Singleton(LocalRequestStatuses)
    queue = providers.Singleton(
        SqlRegistrationQueue,
        engine,
        partitions=settings.provided.queue_partitions,
        batch_size=settings.provided.batch_size,
    )
    lock_times = providers.Singleton(
        LockTimes, wait=settings.provided.lock_wait_seconds, lease=settings.provided.lock_lease_seconds
    )

    new_requests = providers.Singleton(NewRequests, clock)
    announcer = providers.Singleton(Announcer, notifier, uow.provider)
    process = providers.Singleton(
        ProcessRegistrations, uow.provider, lock, clock, statuses, announcer, lock_times
    )
    register = providers.Singleton(
        RegisterWaiting, uow.provider, lock, clock, announcer, lock_times, queue, process
    )
    submit = providers.Singleton(SubmitRegistration, uow.provider, queue, statuses)
    create_store = providers.Singleton(CreateStore, uow.provider)
    switch_waiting = providers.Singleton(SwitchWaiting, uow.provider, announcer)
    move_waiting = providers.Singleton(MoveWaiting, uow.provider, clock, announcer)
    queries = providers.Singleton(Queries, uow.provider, clock, statuses)
    live = providers.Singleton(LiveUpdates, notifier, queries, statuses)
