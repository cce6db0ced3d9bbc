"""The Litestar application, assembled from the container.

`uvicorn --factory entrypoints.http.app:create_app_from_environment` builds one per worker process
(`waitline serve --workers N`): each worker has its own container, connections and metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from dependency_injector import providers
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from adapters.queue.sql import SqlRegistrationQueue
from adapters.ratelimit.local import LocalRateCounter
from adapters.ratelimit.redis import RedisRateCounter
from application.requests import RequestStatus
from entrypoints.container import Container, start, stop
from entrypoints.http.auth import Authenticator, provide_actor
from entrypoints.http.controllers.operations import OperationsController
from entrypoints.http.controllers.params import provide_store_id, provide_waiting_id
from entrypoints.http.controllers.registration import RegisterNowController, RegisterQueuedController
from entrypoints.http.controllers.stores import StoreController
from entrypoints.http.controllers.waitings import GuestController, WaitingController
from entrypoints.http.dependencies import resolve_in_order
from entrypoints.http.metrics import Metrics
from entrypoints.http.openapi import operation_id
from entrypoints.http.pages import PagesController, static_files
from entrypoints.http.problems import EXCEPTION_HANDLERS
from entrypoints.http.rate_limit import WINDOW_SECONDS, RateCounter, RateLimit
from entrypoints.http.sse import StreamCap
from entrypoints.logs import configure_logging
from entrypoints.long_lived import keep_for_life
from entrypoints.settings import Settings

# Collaborators that handlers receive by parameter name.
INJECTED = (
    "settings",
    "registrations",
    "new_requests",
    "register",
    "submit",
    "create_store",
    "switch_waiting",
    "update_store",
    "move_waiting",
    "queries",
    "live",
    "idempotency",
    "day_stats",
)


def _provide(provider: providers.Provider[Any]) -> Provide:
    def provide() -> Any:
        return provider()

    return Provide(provide, sync_to_thread=False, use_cache=True)


def _rate_limit(settings: Settings) -> RateLimit | None:
    """One limit for every process on Redis when configured, else each process's own."""
    if not settings.rate_limit_per_minute:
        return None
    counter: RateCounter
    if settings.redis_url:
        counter = RedisRateCounter.from_url(
            settings.redis_url, prefix=settings.redis_prefix, window=WINDOW_SECONDS
        )
    else:
        counter = LocalRateCounter(WINDOW_SECONDS)
    return RateLimit(counter, settings.rate_limit_per_minute)


def _metrics(container: Container, streams: StreamCap, worked: SqlRegistrationQueue | None) -> Metrics:
    registry = container.registry()
    if worked is None:
        return Metrics(registry, lambda: streams.open)
    return Metrics(registry, lambda: streams.open, depth=worked.depth, dead_letters=worked.dead_count)


def _middleware(metrics: Metrics, limit: RateLimit | None, streams: StreamCap) -> list[Any]:
    chain = [metrics.middleware] if limit is None else [metrics.middleware, limit.middleware]
    return [*chain, streams.middleware]


def create_app(container: Container | None = None) -> Litestar:
    container = container or Container()
    resolve_in_order()
    settings = container.settings()
    queue = container.queue()
    # The embedded queue is worked here; Kafka's by `waitline consume`.
    worked = queue if isinstance(queue, SqlRegistrationQueue) else None
    streams = StreamCap(settings.max_streams)
    metrics = _metrics(container, streams, worked)
    limit = _rate_limit(settings)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await start(container)
        if worked is not None:
            statuses, process = container.statuses(), container.process()
            for request in await worked.all_pending():
                await statuses.put(RequestStatus.queued(request))
            await worked.start(container.registrations().decided(process), process.give_up)
        # Expired idempotency keys are forgotten apart from the requests (application/idempotency.py).
        sweeping = asyncio.create_task(container.idempotency().keep_swept())
        # Webhooks are sent here, apart from the requests that made them (application/webhooks.py).
        webhooks = container.deliver_webhooks()
        webhooks.start()
        try:
            yield
        finally:
            sweeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeping
            if worked is not None:
                await worked.stop()
            await webhooks.stop()
            await stop(container)

    dependencies = {name: _provide(getattr(container, name)) for name in INJECTED}
    dependencies["actor"] = Provide(provide_actor)
    dependencies["store_id"] = Provide(provide_store_id)
    dependencies["waiting_id"] = Provide(provide_waiting_id)
    return Litestar(
        route_handlers=[
            StoreController,
            RegisterNowController,
            RegisterQueuedController,
            WaitingController,
            GuestController,
            OperationsController,
            PagesController,
            static_files(),
        ],
        dependencies=dependencies,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        middleware=_middleware(metrics, limit, streams),
        on_shutdown=[limit.close] if limit else [],
        request_max_body_size=settings.max_body_bytes,
        state=State(
            {
                "authenticator": Authenticator(settings.secret()),
                "metrics": metrics,
                "engine": container.engine(),
                "lock": container.lock(),
                "queue": queue,
            }
        ),
        openapi_config=OpenAPIConfig(
            title="Waitline",
            version="0.1.0",
            description="Waiting lists for popular stores. Errors are application/problem+json.",
            path="/schema",
            security=[{"BearerToken": []}],
            operation_id_creator=operation_id,
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
                }
            ),
        ),
    )


def create_app_from_environment() -> Litestar:
    """An app configured from WAITLINE_* (and `.env`), for uvicorn to build in each worker."""
    container = Container()
    configure_logging(container.settings().log_level)
    app = create_app(container)
    keep_for_life()
    return app
