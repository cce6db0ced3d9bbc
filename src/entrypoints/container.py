"""The composition root: every collaborator named once, adapters chosen here and nowhere else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

from dependency_injector import containers, providers
from prometheus_client import CollectorRegistry
from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.clock import SystemClock
from adapters.lock.local import LocalLock
from adapters.lock.redis import RedisLock
from adapters.notify.local import LocalNotifier
from adapters.notify.redis import RedisNotifier
from adapters.persistence import schema
from adapters.persistence.engine import Limits, make_engine
from adapters.persistence.idempotency import SqlIdempotencyKeys
from adapters.persistence.sql import SqlUnitOfWork
from adapters.persistence.statistics import FreshStatistics
from adapters.queue.kafka import KafkaConfig, KafkaRegistrationQueue
from adapters.queue.kafka_consumer import KafkaRequestConsumer
from adapters.queue.pending import RedisPendingRequests
from adapters.queue.sql import SqlRegistrationQueue
from adapters.status.local import LocalRequestStatuses
from adapters.status.redis import RedisRequestStatuses
from adapters.webhooks.http import HttpWebhookSender
from application.announcements import Announcer
from application.getting_close import GettingClose
from application.idempotency import HOLD, IdempotentRequests
from application.live import LiveUpdates
from application.ports import Lock, Notifier, RegistrationQueue, RequestStatusStore
from application.queries import Queries
from application.registration import (
    LockTimes,
    NewRequests,
    ProcessRegistrations,
    RegisterWaiting,
    SubmitRegistration,
)
from application.stats import ReadDayStats
from application.stores import CreateStore, SwitchWaiting, UpdateStore, WebhookPolicy
from application.waiting_actions import MoveWaiting
from application.webhooks import DeliverWebhooks, RetrySchedule
from entrypoints.instruments import Registrations, TimedLock, WebhookOutcomes
from entrypoints.settings import Settings


def engine_for(settings: Settings, limits: Limits | None = None) -> AsyncEngine:
    if settings.embedded_database:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return make_engine(settings.sqlalchemy_url(), limits or settings.database_limits())


async def database(
    engine: AsyncEngine, settings: Settings, statistics: FreshStatistics
) -> AsyncIterator[AsyncEngine]:
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
        await statistics.close()  # before the pool it takes its connection from
        await engine.dispose()


def store_lock(settings: Settings) -> Lock:
    """The stores' lock: on Redis when configured (shared by every process), else in-process."""
    if settings.redis_url:
        return RedisLock.from_url(settings.redis_url, prefix=settings.redis_prefix)
    return LocalLock()


def live_notifier(settings: Settings) -> Notifier:
    """Live events: on Redis when configured (a watcher's process is seldom the one that acted)."""
    if settings.redis_url:
        return RedisNotifier.from_url(settings.redis_url, prefix=settings.redis_prefix)
    return LocalNotifier()


def request_statuses(settings: Settings) -> RequestStatusStore:
    """Queued requests' statuses: on Redis when configured (a consumer elsewhere decides them)."""
    if settings.redis_url:
        return RedisRequestStatuses.from_url(settings.redis_url, prefix=settings.redis_prefix)
    return LocalRequestStatuses()


def kafka_config(settings: Settings) -> KafkaConfig:
    if not settings.kafka_bootstrap:
        raise RuntimeError("WAITLINE_KAFKA_BOOTSTRAP is not set")
    return KafkaConfig(
        bootstrap=settings.kafka_bootstrap,
        topic=settings.kafka_topic,
        dead_letter_topic=settings.kafka_dead_letter_topic,
        group=settings.kafka_group,
        idempotence=settings.kafka_idempotence,
        timeout=settings.kafka_timeout_seconds,
        session_timeout=settings.kafka_session_timeout_seconds,
    )


def pending_requests(settings: Settings) -> RedisPendingRequests:
    if not settings.redis_url:
        raise RuntimeError("WAITLINE_REDIS_URL is not set")
    # Bounded: V2 reads the list while it holds a store's lock. Blocking: redis-py's default pool
    # fails the 101st concurrent command, and a burst of accepts lists more at once than that.
    pool = BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=100, timeout=5, socket_timeout=5, socket_connect_timeout=5
    )
    return RedisPendingRequests(Redis.from_pool(pool), prefix=settings.redis_prefix)


# How many batches a worker of the database's queue takes at a time: the next batch is decided
# while the one before is written (measured on a drain of 10,000 at batch 1,000 on PostgreSQL:
# 690 -> 610 ms, with the next batch read and the last deleted meanwhile).
PIPELINED_BATCHES = 4


def registration_queue(
    settings: Settings,
    engine: AsyncEngine,
    config: providers.Provider[KafkaConfig],
    pending: providers.Provider[RedisPendingRequests],
) -> RegistrationQueue:
    """On Kafka when configured (`waitline consume` works it), else a table of the database
    worked inside the API process."""
    if settings.kafka_bootstrap:
        return KafkaRegistrationQueue(config(), pending())
    return SqlRegistrationQueue(
        engine,
        partitions=settings.queue_partitions,
        # ProcessRegistrations decides them a batch per transaction, as a pipeline.
        batch_size=settings.batch_size * PIPELINED_BATCHES,
        attempts=settings.queue_attempts,
    )


async def connections(
    lock: Lock, statuses: RequestStatusStore, queue: RegistrationQueue, notifier: Notifier
) -> AsyncIterator[None]:
    """Closed on shutdown. (A resource of its own: providers that depend on an async resource
    hand out futures, so what it closes stay plain singletons.)"""
    try:
        yield
    finally:
        for each in (queue, notifier, statuses, lock):
            if isinstance(each, RedisLock | RedisRequestStatuses | KafkaRegistrationQueue | RedisNotifier):
                await each.close()


async def webhook_connections(sender: HttpWebhookSender) -> AsyncIterator[None]:
    """The webhooks' HTTP connections, closed on shutdown (once the worker has stopped)."""
    try:
        yield
    finally:
        await sender.close()


def idempotency_hold(settings: Settings) -> timedelta:
    """How long an Idempotency-Key's claim holds it at most: longer than the slowest answer the
    settings allow (the store's lock waited for and held, the broker's acknowledgement), twice."""
    slowest = settings.lock_wait_seconds + (settings.lock_lease_seconds or 0) + settings.kafka_timeout_seconds
    return max(HOLD, timedelta(seconds=2 * slowest))


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
    # The process's metrics: the API serves them on /metrics, `waitline consume` on its own port.
    registry = providers.Singleton(CollectorRegistry)
    registrations = providers.Singleton(Registrations, registry)

    engine = providers.Singleton(engine_for, settings)
    statistics = providers.Singleton(FreshStatistics, engine)
    database = providers.Resource(database, engine, settings, statistics)
    uow = providers.Factory(SqlUnitOfWork, engine, statistics)
    clock = providers.Singleton(SystemClock)
    lock = providers.Singleton(store_lock, settings)
    timed_lock = providers.Singleton(TimedLock, lock, registry)
    notifier = providers.Singleton(live_notifier, settings)
    statuses = providers.Singleton(request_statuses, settings)
    kafka = providers.Singleton(kafka_config, settings)
    pending = providers.Singleton(pending_requests, settings)
    queue = providers.Singleton(registration_queue, settings, engine, kafka.provider, pending.provider)
    consumer = providers.Singleton(
        KafkaRequestConsumer,
        kafka,
        pending,
        batch_size=settings.provided.batch_size,
        attempts=settings.provided.queue_attempts,
    )
    closed = providers.Resource(connections, lock, statuses, queue, notifier)
    lock_times = providers.Singleton(
        LockTimes, wait=settings.provided.lock_wait_seconds, lease=settings.provided.lock_lease_seconds
    )

    new_requests = providers.Singleton(NewRequests, clock)
    webhook_sender = providers.Singleton(
        HttpWebhookSender,
        settings.provided.webhook_timeout_seconds,
        allow_insecure=settings.provided.webhook_allow_insecure,
    )
    webhook_connections = providers.Resource(webhook_connections, webhook_sender)
    retry_schedule = providers.Singleton(
        RetrySchedule,
        attempts=settings.provided.webhook_attempts,
        first_delay=settings.provided.webhook_first_retry_seconds,
    )
    webhook_outcomes = providers.Singleton(WebhookOutcomes, registry)
    deliver_webhooks = providers.Singleton(
        DeliverWebhooks,
        uow.provider,
        webhook_sender,
        clock,
        retry_schedule,
        poll_seconds=settings.provided.webhook_poll_seconds,
        tell=webhook_outcomes.provided.count,
    )
    getting_close = providers.Singleton(GettingClose, uow.provider, clock, deliver_webhooks.provided.nudge)
    announcer = providers.Singleton(Announcer, notifier, uow.provider, getting_close)
    process = providers.Singleton(
        ProcessRegistrations,
        uow.provider,
        timed_lock,
        clock,
        statuses,
        announcer,
        lock_times,
        most=settings.provided.batch_size,
    )
    register = providers.Singleton(
        RegisterWaiting, uow.provider, timed_lock, clock, announcer, lock_times, queue, process
    )
    submit = providers.Singleton(SubmitRegistration, uow.provider, queue, statuses)
    create_store = providers.Singleton(CreateStore, uow.provider, clock)
    switch_waiting = providers.Singleton(SwitchWaiting, uow.provider, clock, announcer)
    webhooks = providers.Singleton(WebhookPolicy, allow_insecure=settings.provided.webhook_allow_insecure)
    update_store = providers.Singleton(UpdateStore, uow.provider, clock, announcer, webhooks)
    move_waiting = providers.Singleton(MoveWaiting, uow.provider, clock, announcer)
    queries = providers.Singleton(Queries, uow.provider, clock, statuses)
    day_stats = providers.Singleton(ReadDayStats, uow.provider, clock)
    live = providers.Singleton(LiveUpdates, notifier, queries, statuses)
    idempotency_keys = providers.Singleton(SqlIdempotencyKeys, engine)
    idempotency = providers.Singleton(
        IdempotentRequests, idempotency_keys, clock, hold=providers.Factory(idempotency_hold, settings)
    )
