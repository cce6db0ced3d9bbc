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
from collections.abc import Iterator
from contextlib import contextmanager

import redis

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


@contextmanager
def private_redis() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "no Redis answers at WAITLINE_TEST_REDIS or 127.0.0.1:6379, and no redis-server to start one: "
            "install Redis (e.g. apt-get install redis-server) or point WAITLINE_TEST_REDIS at a server"
        )
    port, folder = _free_port(), tempfile.mkdtemp(prefix="waitline-redis-")
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", folder]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while not _reachable(url):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the private redis-server on port {port} did not start")
            time.sleep(0.05)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def redis_server() -> Iterator[str]:
    url = os.environ.get("WAITLINE_TEST_REDIS", DEFAULT_URL)
    if _reachable(url):
        yield url
        return
    with private_redis() as private:
        yield private
