"""`waitline serve --workers 2` as deployed on PostgreSQL and Redis: two worker processes answer on
one port, and SIGTERM lets the registrations in flight on both finish before the parent exits 0."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx

from adapters.lock.redis import RedisLock
from application.registration import store_lock_key
from harness.httpkit import SECRET, Tokens
from harness.redis import own_keys

tokens = Tokens(SECRET)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "entrypoints", "serve", "--workers", "2", "--port", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def logged(log: Path) -> str:
    return log.read_text(errors="replace")


async def ready(client: httpx.AsyncClient, log: Path) -> list[int]:
    """Both workers started (their pids), and the port answers ready."""
    deadline = time.monotonic() + 60
    while True:
        said = logged(log)
        workers = [int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", said)]
        if len(workers) == 2 and said.count("Application startup complete") == 2:
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/health/ready")).status_code == 200:
                    return workers
        assert time.monotonic() < deadline, f"not ready: {said}"
        await asyncio.sleep(0.1)


def with_open_connections(port: int, pids: list[int]) -> set[int]:
    """The processes holding an established connection on the port (Linux's /proc)."""
    established = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for row in Path(table).read_text().splitlines()[1:]:
                fields = row.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                    established.add(f"socket:[{fields[9]}]")
    holding = set()
    for pid in pids:
        with contextlib.suppress(FileNotFoundError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(FileNotFoundError):
                    if os.readlink(fd) in established:
                        holding.add(pid)
    return holding


@contextlib.asynccontextmanager
async def store_lock(url: str, prefix: str) -> AsyncIterator[RedisLock]:
    """The lock the workers take, as one more process of theirs would."""
    lock = RedisLock.from_url(url, prefix=prefix)
    try:
        yield lock
    finally:
        await lock.close()


async def test_sigterm_lets_both_workers_finish_the_registrations_in_flight_and_exits_0(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    port, prefix, log = free_port(), f"test:{uuid.uuid4().hex}:", tmp_path / "serve.log"
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "WAITLINE_DATA_DIR": str(tmp_path / "data"),
        "WAITLINE_DATABASE_URL": postgres_url,
        "WAITLINE_REDIS_URL": redis_url,
        "WAITLINE_REDIS_PREFIX": prefix,
        "WAITLINE_JWT_SECRET": SECRET,
        "WAITLINE_LOCK_WAIT_SECONDS": "30",
        "WAITLINE_LOG_LEVEL": "INFO",
    }
    async with own_keys(redis_url, prefix), store_lock(redis_url, prefix) as lock:
        with serving(env, port, log) as server:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                workers = await ready(client, log)
                store = await open_store(client)
                for n in range(3):
                    assert (await join(client, store, f"before-{n}")).status_code == 201
            await until(lambda: not with_open_connections(port, workers), "idle connections closed")

            # The store's lock held here keeps the next registrations in flight, on both workers.
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                async with lock.hold(store_lock_key(store), wait_time=5, lease_time=None):
                    in_flight: list[asyncio.Task[httpx.Response]] = []
                    while with_open_connections(port, workers) != set(workers):
                        assert len(in_flight) < 40, "one worker took every connection"
                        customer = f"in-flight-{len(in_flight)}"
                        in_flight.append(asyncio.create_task(join(client, store, customer)))
                        await asyncio.sleep(0.05)
                    server.send_signal(signal.SIGTERM)
                    await asyncio.sleep(1)
                    assert server.poll() is None, "stopped with registrations in flight"
                    assert not any(task.done() for task in in_flight)
                released = time.monotonic()
                answers = await asyncio.gather(*in_flight)

            assert [answer.status_code for answer in answers] == [201] * len(answers), [
                answer.text for answer in answers
            ]
            assert await asyncio.to_thread(server.wait, 15) == 0
            assert time.monotonic() - released < 10

    said = logged(log)
    assert said.count("Application shutdown complete") == 2, said
    assert "Traceback" not in said, said


async def open_store(client: httpx.AsyncClient) -> int:
    made = await client.post(
        "/stores", json={"name": "Two workers", "waitingOpen": True}, headers=tokens.admin
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


async def join(client: httpx.AsyncClient, store: int, customer: str) -> httpx.Response:
    return await client.post(
        f"/v2/stores/{store}/waitings", json={"partySize": 2}, headers=tokens.customer(customer)
    )


async def until(condition: Callable[[], bool], what: str, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        await asyncio.sleep(0.05)
