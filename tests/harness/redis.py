"""A Redis server for the tests: the one at WAITLINE_TEST_REDIS (default redis://127.0.0.1:6379/0),
or, if none answers, a private `redis-server` from PATH on a free port. None at all fails loudly.
Tests keep to keys of their own (a random prefix), so a shared server is never disturbed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import redis
from redis.asyncio import Redis

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def _reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except (redis.RedisError, OSError):
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A redis-server of the test's own on a free port: one a test may stop (it then refuses
    connections) and start again on the same port, unlike the shared server. It keeps nothing."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "no Redis answers at WAITLINE_TEST_REDIS or 127.0.0.1:6379, and no redis-server to start "
                "one: install Redis (e.g. apt-get install redis-server) or point WAITLINE_TEST_REDIS at a server"
            )
        self._binary, self.port = binary, _free_port()
        self.folder = tempfile.mkdtemp(prefix="waitline-redis-")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._server: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            self._binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            self.folder,
        ]
        self._server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not _reachable(self.url):
            if self._server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the private redis-server on port {self.port} did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._server is not None and self._server.poll() is None:
            self._server.terminate()
            self._server.wait(timeout=10)
        self._server = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def private_redis() -> Iterator[str]:
    server = PrivateRedis()
    try:
        server.start()
        yield server.url
    finally:
        server.close()


@contextmanager
def redis_server() -> Iterator[str]:
    url = os.environ.get("WAITLINE_TEST_REDIS", DEFAULT_URL)
    if _reachable(url):
        yield url
        return
    with private_redis() as private:
        yield private


@asynccontextmanager
async def own_keys(url: str, prefix: str) -> AsyncIterator[None]:
    """Inside, a test uses keys under `prefix` of a shared server; they are deleted on the way out."""
    try:
        yield
    finally:
        client = Redis.from_url(url)
        try:
            keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()
