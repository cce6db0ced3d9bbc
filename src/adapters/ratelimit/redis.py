"""Requests counted on Redis: one limit for every process of the service.

- One Lua script per request: INCR the client's key and, on the window's first request, give it
  the window as its expiry; it answers the count and the window's remaining milliseconds. Being
  one script, concurrent requests of any process are counted exactly once each (no get-then-set).
- A fixed window opened by the client's first request, as Litestar's limiter had it: the count
  and `RateLimit-Reset` read straight off one key and its TTL.
- Fail-open: a rate limiter must not turn a Redis blip into an outage. A short timeout (to
  connect, for an answer, for a free connection of the pool) and no retries bound the wait; an
  unreachable Redis answers `None` (let the request through), said in the log at most once every
  `QUIET` seconds.
- A burst queues for the pool's connections (redis-py's default pool fails the 101st concurrent
  command): one script takes well under a millisecond.
"""

from __future__ import annotations

import logging
import time

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from adapters.ratelimit import Hit

log = logging.getLogger(__name__)

# Seconds to wait for Redis before letting a request through uncounted.
TIMEOUT = 0.5
CONNECTIONS = 50
# Seconds between two log lines about Redis being unreachable.
QUIET = 60.0

# KEYS[1] the client's counter; ARGV[1] the window in ms. {count, remaining ms of the window}.
# A key without expiry (one that outlived a lost PEXPIRE) gets one: no client is limited forever.
HIT = """
local count = redis.call('incr', KEYS[1])
local left = redis.call('pttl', KEYS[1])
if left < 0 then
  redis.call('pexpire', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {count, left}
"""


class RedisRateCounter:
    def __init__(self, client: Redis, *, prefix: str, window: float) -> None:
        self._client, self._prefix = client, prefix
        self._window_ms = round(window * 1000)
        self._hit = client.register_script(HIT)
        self._said_at = -QUIET

    @classmethod
    def from_url(cls, url: str, *, prefix: str, window: float, timeout: float = TIMEOUT) -> RedisRateCounter:
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=CONNECTIONS,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        return cls(Redis.from_pool(pool), prefix=prefix, window=window)

    async def hit(self, client: str) -> Hit | None:
        """The request counted, or None when Redis cannot count it (let it through)."""
        try:
            count, left = await self._hit(keys=[f"{self._prefix}rate:{client}"], args=[self._window_ms])
        except (RedisError, OSError) as error:
            self._say_unreachable(error)
            return None
        return Hit(int(count), int(left))

    def _say_unreachable(self, error: Exception) -> None:
        now = time.monotonic()
        if now - self._said_at >= QUIET:
            self._said_at = now
            log.warning("rate limit: Redis unreachable (%r); requests pass uncounted meanwhile", error)

    async def close(self) -> None:
        await self._client.aclose()
