"""A limit on requests per minute per client address, with a counter in this process or on Redis.

The client is the connection's address (`scope["client"]`): behind a proxy or load balancer that
is the proxy's, so every client behind it shares one limit, unless uvicorn trusts the proxy's
`X-Forwarded-For`: `waitline serve` does from 127.0.0.1 and ::1, and from the addresses in
uvicorn's `FORWARDED_ALLOW_IPS`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.exceptions import TooManyRequestsException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from adapters.ratelimit import Hit

WINDOW_SECONDS = 60
# Load balancers and Prometheus poll these; the schema is for people reading the API.
UNLIMITED = ("/health", "/metrics", "/schema")


class RateCounter(Protocol):
    async def hit(self, client: str) -> Hit | None:
        """Count a request of `client`; None when it cannot be counted (it then passes)."""

    async def close(self) -> None: ...


class RateLimit:
    def __init__(self, counter: RateCounter, per_minute: int, unlimited: Sequence[str] = UNLIMITED) -> None:
        self.counter, self.per_minute, self._unlimited = counter, per_minute, tuple(unlimited)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        async def limited(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP or self._is_unlimited(scope["path"]):
                await app(scope, receive, send)
                return
            client = scope.get("client")
            hit = await self.counter.hit(client[0] if client else "unknown")
            if hit is None:
                await app(scope, receive, send)
                return
            headers = self.headers(hit)
            if hit.count > self.per_minute:
                headers["Retry-After"] = headers["RateLimit-Reset"]
                raise TooManyRequestsException(
                    detail=f"more than {self.per_minute} requests a minute from this address",
                    headers=headers,
                )

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message.setdefault("headers", [])
                    MutableScopeHeaders(message).update(headers)
                await send(message)

            await app(scope, receive, send_with_headers)

        return limited

    def _is_unlimited(self, path: str) -> bool:
        return any(path == prefix or path.startswith(prefix + "/") for prefix in self._unlimited)

    def headers(self, hit: Hit) -> dict[str, str]:
        """The IETF RateLimit draft's headers, as Litestar's limiter sent them."""
        return {
            "RateLimit-Policy": f"{self.per_minute}; w={WINDOW_SECONDS}",
            "RateLimit-Limit": str(self.per_minute),
            "RateLimit-Remaining": str(max(self.per_minute - hit.count, 0)),
            # Whole seconds, at least 1: a client told 0 would retry at once and be refused again.
            "RateLimit-Reset": str(max(math.ceil(hit.reset_ms / 1000), 1)),
        }

    async def close(self) -> None:
        await self.counter.close()
