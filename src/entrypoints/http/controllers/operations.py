"""Health and metrics, for load balancers and Prometheus."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.lock.redis import RedisLock
from adapters.queue.kafka import KafkaRegistrationQueue
from adapters.queue.sql import SqlRegistrationQueue
from application.ports import RegistrationQueue
from entrypoints.http.answers import Live, Ready
from entrypoints.http.openapi import documented

# Litestar adds the charset to text/* itself: given twice, Prometheus 3 refuses to scrape.
METRICS_MEDIA_TYPE = CONTENT_TYPE_LATEST.replace("; charset=utf-8", "")


class OperationsController(Controller):
    tags = ["operations"]
    security = [{}]

    @get("/health/live", summary="The process is up", **documented(Live, problems=()))
    async def live(self) -> dict[str, str]:
        return {"status": "UP"}

    @get(
        "/health/ready",
        summary="Each configured dependency is reachable",
        responses={
            200: ResponseSpec(Ready, description="Every dependency is up.", generate_examples=False),
            503: ResponseSpec(Ready, description="A dependency is down: see which.", generate_examples=False),
        },
    )
    async def ready(self, state: State) -> Response[dict[str, Any]]:
        checks = {"database": await _database(state.engine), "queue": await _queue(state.queue)}
        if isinstance(state.lock, RedisLock):
            checks["lock"] = await _redis(state.lock)
        up = all(check["status"] == "UP" for check in checks.values())
        body = {"status": "UP" if up else "DOWN", "dependencies": checks}
        return Response(body, status_code=200 if up else 503)

    @get("/metrics", summary="Prometheus metrics", media_type=METRICS_MEDIA_TYPE)
    async def metrics(self, state: State) -> bytes:
        return generate_latest(state.metrics.registry)


async def _database(engine: AsyncEngine) -> dict[str, str]:
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as error:
        return {"status": "DOWN", "detail": f"{type(error).__name__}: {error}"}
    return {"status": "UP", "kind": engine.dialect.name}


async def _redis(lock: RedisLock) -> dict[str, str]:
    try:
        async with asyncio.timeout(2):
            await lock.ping()
    except Exception as error:
        return {"status": "DOWN", "detail": f"{type(error).__name__}: {error}"}
    return {"status": "UP", "kind": "redis"}


async def _queue(queue: RegistrationQueue) -> dict[str, str]:
    if isinstance(queue, KafkaRegistrationQueue):
        try:
            await queue.ping()
        except Exception as error:
            return {"status": "DOWN", "detail": f"the broker: {type(error).__name__}: {error}"}
        return {"status": "UP", "kind": "kafka"}
    assert isinstance(queue, SqlRegistrationQueue)
    if not queue.running():
        return {"status": "DOWN", "detail": "the queue's workers are not running"}
    return {"status": "UP", "kind": "database", "depth": str(queue.depth())}
