"""The rate limit: per client address, in the process without Redis, one for every process with it.

The app-level tests run on both profiles (embedded: the in-process counter; production: Redis's).
Two `serve` processes on one Redis share one limit; an unreachable Redis lets requests through.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.exceptions import TooManyRequestsException
from redis.asyncio import Redis
from test_two_processes import SECRET, free_port, logged, ready, servers

from adapters.ratelimit import Hit
from adapters.ratelimit.local import LocalRateCounter
from adapters.ratelimit.redis import RedisRateCounter
from entrypoints.http.rate_limit import RateLimit
from harness.httpkit import assert_problem
from harness.redis import PrivateRedis

LIMITED = "/stores/424242"  # a public route: its 404 costs one request like any answer


# In the app, on both profiles.


@pytest.mark.waitline(rate_limit_per_minute=3)
async def test_each_answer_says_how_many_requests_are_left_and_the_one_over_is_a_problem(client):
    left = []
    for _ in range(3):
        response = await client.get(LIMITED)
        assert response.status_code == 404
        assert response.headers["ratelimit-limit"] == "3"
        assert 1 <= int(response.headers["ratelimit-reset"]) <= 60
        left.append(int(response.headers["ratelimit-remaining"]))
    assert left == [2, 1, 0]

    refused = await client.get(LIMITED)

    body = assert_problem(refused, 429, "TOO_MANY_REQUESTS")
    assert "3 requests a minute" in body["detail"]
    assert refused.headers["ratelimit-remaining"] == "0"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["retry-after"] == refused.headers["ratelimit-reset"]


@pytest.mark.waitline(rate_limit_per_minute=1)
async def test_health_metrics_and_the_schema_are_neither_limited_nor_counted(client):
    for path in ("/health/live", "/health/ready", "/metrics", "/schema/openapi.json") * 3:
        response = await client.get(path)
        assert response.status_code == 200, path
        assert "ratelimit-limit" not in response.headers
    assert (await client.get(LIMITED)).status_code == 404
    assert (await client.get(LIMITED)).status_code == 429


async def test_without_a_limit_nothing_is_counted(client):
    for _ in range(5):
        response = await client.get(LIMITED)
        assert response.status_code == 404
        assert "ratelimit-limit" not in response.headers


# The middleware and its counters.


async def _answer(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _call(app: Any, address: str) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "path": "/stores", "client": (address, 1234), "headers": []}
    await app(scope, None, send)
    return sent


async def test_each_client_address_has_a_limit_of_its_own():
    app = RateLimit(LocalRateCounter(60), per_minute=2).middleware(_answer)
    for address in ("10.0.0.1", "10.0.0.2"):
        for _ in range(2):
            sent = await _call(app, address)
            assert sent[0]["status"] == 204
        with pytest.raises(TooManyRequestsException) as refused:
            await _call(app, address)
        assert refused.value.headers is not None
        assert int(refused.value.headers["Retry-After"]) >= 1


async def test_a_request_that_cannot_be_counted_passes():
    class Unreachable:
        async def hit(self, client: str) -> Hit | None:
            return None

        async def close(self) -> None:
            pass

    app = RateLimit(Unreachable(), per_minute=1).middleware(_answer)
    for _ in range(3):
        sent = await _call(app, "10.0.0.1")
        assert sent[0]["status"] == 204
        assert sent[0]["headers"] == []


async def test_the_local_window_opens_with_the_first_request_and_ends_a_window_later():
    now = [100.0]
    counter = LocalRateCounter(60, clock=lambda: now[0])
    assert await counter.hit("a") == Hit(1, 60_000)
    now[0] = 130.0
    assert await counter.hit("a") == Hit(2, 30_000)
    assert await counter.hit("b") == Hit(1, 60_000)
    now[0] = 160.0
    assert await counter.hit("a") == Hit(1, 60_000)


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    prefix = f"test:{uuid.uuid4().hex}:"
    yield prefix
    redis = Redis.from_url(redis_url)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


async def test_redis_counts_each_of_200_concurrent_requests_exactly_once(redis_url: str, prefix: str):
    # A generous timeout: 200 connections open at once here, and none may be let through uncounted.
    counter = RedisRateCounter.from_url(redis_url, prefix=prefix, window=60, timeout=10)
    try:
        hits = await asyncio.gather(*(counter.hit("10.0.0.1") for _ in range(200)))
    finally:
        await counter.close()
    counts = sorted(hit.count for hit in hits if hit is not None)
    assert counts == list(range(1, 201))
    limit = 37
    assert sum(count <= limit for count in counts) == limit
    assert all(0 < hit.reset_ms <= 60_000 for hit in hits if hit is not None)


async def test_the_redis_window_expires_with_its_key(redis_url: str, prefix: str):
    counter = RedisRateCounter.from_url(redis_url, prefix=prefix, window=0.2)
    try:
        before = [await counter.hit("a"), await counter.hit("a")]
        await asyncio.sleep(0.3)
        after = await counter.hit("a")
    finally:
        await counter.close()
    assert [hit.count if hit else None for hit in before] == [1, 2]
    assert after is not None and after.count == 1


async def test_an_unreachable_redis_counts_nothing_and_says_so_once(caplog: pytest.LogCaptureFixture):
    counter = RedisRateCounter.from_url(f"redis://127.0.0.1:{free_port()}/0", prefix="p:", window=60)
    try:
        with caplog.at_level(logging.WARNING, logger="adapters.ratelimit.redis"):
            async with asyncio.timeout(5):
                hits = [await counter.hit("a") for _ in range(5)]
    finally:
        await counter.close()
    assert hits == [None] * 5
    assert len([r for r in caplog.records if "Redis unreachable" in r.message]) == 1


# As deployed: `serve` processes, each with its own SQLite, on one Redis.


def _env(**settings: str) -> dict[str, str]:
    kept = {name: value for name, value in os.environ.items() if not name.startswith("WAITLINE_")}
    return {**kept, "WAITLINE_JWT_SECRET": SECRET, "WAITLINE_RATE_LIMIT_PER_MINUTE": "10", **settings}


@pytest.fixture
def two_on_one_redis(redis_url: str, prefix: str, tmp_path: Path) -> Iterator[list[tuple[str, Path]]]:
    env = _env(WAITLINE_REDIS_URL=redis_url, WAITLINE_REDIS_PREFIX=prefix)
    with servers(2, env, tmp_path) as bases:
        yield bases


async def test_two_processes_on_one_redis_share_one_limit(two_on_one_redis, redis_url: str, prefix: str):
    async with httpx.AsyncClient(timeout=30) as client:
        for base, log in two_on_one_redis:
            await ready(client, base, log)
        [first, _], [second, _] = two_on_one_redis
        for n in range(10):
            response = await client.get(f"{(first, second)[n % 2]}{LIMITED}")
            assert response.status_code == 404, response.text
            assert response.headers["ratelimit-remaining"] == str(9 - n)
        for base in (first, second):
            refused = await client.get(f"{base}{LIMITED}")
            assert_problem(refused, 429, "TOO_MANY_REQUESTS")
            assert int(refused.headers["retry-after"]) >= 1
    redis = Redis.from_url(redis_url)
    try:
        assert int(await redis.get(f"{prefix}rate:127.0.0.1")) == 12
    finally:
        await redis.aclose()


async def test_requests_are_served_while_redis_is_down_and_counted_again_once_it_is_back(tmp_path: Path):
    redis = PrivateRedis()
    redis.start()
    try:
        env = _env(WAITLINE_REDIS_URL=redis.url, WAITLINE_RATE_LIMIT_PER_MINUTE="5")
        with servers(1, env, tmp_path) as [(base, log)]:
            async with httpx.AsyncClient(timeout=30) as client:
                await ready(client, base, log)
                assert (await client.get(f"{base}{LIMITED}")).headers["ratelimit-remaining"] == "4"
                redis.stop()
                for _ in range(15):
                    response = await client.get(f"{base}{LIMITED}")
                    assert response.status_code == 404, response.text
                    assert "ratelimit-remaining" not in response.headers
                redis.start()  # empty: it keeps nothing
                assert (await client.get(f"{base}{LIMITED}")).headers["ratelimit-remaining"] == "4"
            assert logged(log).count("rate limit: Redis unreachable") == 1, logged(log)
    finally:
        redis.close()
