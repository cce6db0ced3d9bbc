"""Requests answered QUEUED and not yet decided by a consumer, per store, on Redis.

V2 must never overtake a request already answered QUEUED. With Kafka the API cannot ask the
consumer's partition what is still undecided (and brokers' end offsets are not to be trusted),
so the API keeps its own list: a request is added once the broker acknowledged it (before the
202 leaves), and the consumer takes it off once its outcome is stored. V2 decides the listed
requests first, under the store's lock (deciding is idempotent by traceId).

A consumer may take a request off before the API added it (it is that fast): taking off leaves
a short-lived tombstone that the late add honours, so nothing decided lingers in the list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

from redis.asyncio import Redis

from adapters.queue.codec import UnreadableMessage, decode, encode
from application.requests import RegistrationRequest

# KEYS: order (zset), requests (hash), tombstone. ARGV: traceId, payload, ttl ms, position.
_ADD = """
if redis.call('DEL', KEYS[3]) == 1 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
for i = 1, 2 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return 1
"""

# KEYS: order, requests. ARGV: tombstone prefix, tombstone ttl ms, traceIds...
_DONE = """
for i = 3, #ARGV do
  if redis.call('HDEL', KEYS[2], ARGV[i]) == 1 then
    redis.call('ZREM', KEYS[1], ARGV[i])
  else
    redis.call('SET', ARGV[1] .. ARGV[i], '1', 'PX', ARGV[2])
  end
end
return #ARGV - 2
"""

# KEYS: order, requests. The payloads in queue order (HMGET in chunks: Lua's unpack is bounded).
_LIST = """
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local payloads = {}
for first = 1, #ids, 1000 do
  local chunk = redis.call('HMGET', KEYS[2], unpack(ids, first, math.min(first + 999, #ids)))
  for _, payload in ipairs(chunk) do
    if payload then payloads[#payloads + 1] = payload end
  end
end
return payloads
"""


class RedisPendingRequests:
    """One list per store; the keys carry the store in braces, so they share a cluster slot."""

    TOMBSTONE_MS = 10 * 60 * 1000
    # A store with no accepts for a day forgets its list: a request left by a crash between the
    # broker's ack and the consumer's take-off costs V2 a lookup at most that long.
    TTL_MS = 24 * 60 * 60 * 1000

    def __init__(self, client: Redis, prefix: str = "") -> None:
        self._client, self._prefix = client, prefix
        self._add = client.register_script(_ADD)
        self._done = client.register_script(_DONE)
        self._list = client.register_script(_LIST)

    async def add(self, request: RegistrationRequest, position: int) -> None:
        """List the request at `position`: where the queue put it (its offset in the store's
        partition), so that V2 decides the listed requests in the order the consumer would."""
        keys = self._keys(request.store_id)
        tombstone = f"{keys[0]}:gone:{request.trace_id}"
        args: list[str | bytes | int] = [request.trace_id, encode(request), self.TTL_MS, position]
        await self._add(keys=[*keys, tombstone], args=args)

    async def done(self, requests: Iterable[RegistrationRequest]) -> None:
        by_store: dict[int, list[str]] = {}
        for request in requests:
            by_store.setdefault(request.store_id, []).append(request.trace_id)
        for store_id, trace_ids in by_store.items():
            keys = self._keys(store_id)
            await self._done(keys=keys, args=[f"{keys[0]}:gone:", self.TOMBSTONE_MS, *trace_ids])

    async def of_store(self, store_id: int) -> list[RegistrationRequest]:
        payloads = cast(Sequence[bytes], await self._list(keys=self._keys(store_id)))
        requests = []
        for payload in payloads:
            try:
                requests.append(decode(payload))
            except UnreadableMessage:
                continue  # written by a newer version; its consumer decides it
        return requests

    async def close(self) -> None:
        await self._client.aclose()

    def _keys(self, store_id: int) -> list[str]:
        base = f"{self._prefix}pending:{{{store_id}}}"
        return [base, f"{base}:requests"]
