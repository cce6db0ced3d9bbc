"""The `WebhookSender` port on httpx.

A store's URL was checked when it was set (application/stores.py), but the name may point
elsewhere since: each delivery resolves it again, refuses it if any of its addresses is not
public, and connects to the address it checked (the name still goes in the Host header and the
TLS handshake, so the certificate is checked against it), so a name that changes between the
check and the connection cannot lead inside the network. Redirects are not followed, for the
same reason. With `allow_insecure` (local development, tests), the URL is used as given.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from application.ports import WebhookNotDelivered
from application.stores import public_host

USER_AGENT = "Waitline-Webhooks/1"
# Answers that say "later": the endpoint is failing, overloaded or asked to slow down.
RETRIED_STATUSES = frozenset({408, 425, 429})

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve(host: str, port: int) -> list[str]:
    """Every address the name has now, in the resolver's order."""
    found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global


class HttpWebhookSender:
    def __init__(
        self,
        timeout: float = 10.0,
        *,
        allow_insecure: bool = False,
        resolver: Resolver = resolve,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`timeout` bounds a whole attempt, the name's resolution included."""
        self._timeout, self._allow_insecure, self._resolve = timeout, allow_insecure, resolver
        # No proxy from the environment: the address checked must be the one connected to.
        self._client = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": USER_AGENT},
            transport=transport,
        )

    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                target, pinned_headers, extensions = await self._target(httpx.URL(url))
                response = await self._client.post(
                    target, content=body, headers={**headers, **pinned_headers}, extensions=extensions
                )
        except (TimeoutError, httpx.TimeoutException):
            raise WebhookNotDelivered(f"no answer within {self._timeout} s", retry=True) from None
        except (httpx.TransportError, OSError) as error:
            raise WebhookNotDelivered(f"no connection: {error!r}", retry=True) from error
        except httpx.InvalidURL as error:
            raise WebhookNotDelivered(f"not a URL to send to: {error}", retry=False) from error
        if response.is_success:
            return
        retry = response.status_code >= 500 or response.status_code in RETRIED_STATUSES
        raise WebhookNotDelivered(f"answered {response.status_code}", retry=retry)

    async def _target(self, url: httpx.URL) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
        """Where to connect, and the Host header and TLS name that go with it."""
        if self._allow_insecure:
            return url, {}, {}
        host = url.raw_host.decode("ascii")  # an international name as DNS knows it
        if url.scheme != "https" or not public_host(host):
            raise WebhookNotDelivered(f"{host} is not a public https address", retry=False)
        addresses = await self._resolve(host, url.port or 443)
        if not addresses:
            raise WebhookNotDelivered(f"{host} has no address", retry=True)
        if not all(public_address(address) for address in addresses):
            raise WebhookNotDelivered(f"{host} resolves to an address that is not public", retry=False)
        return (
            url.copy_with(host=addresses[0]),
            {"Host": url.netloc.decode("ascii")},
            {"sni_hostname": host},
        )

    async def close(self) -> None:
        await self._client.aclose()
