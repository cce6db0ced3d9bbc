"""V2 with two API processes, as deployed: `python -m entrypoints serve` twice on one PostgreSQL
database and one Redis lock. Registrations split across both get every number once, in order."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
from redis.asyncio import Redis

from adapters.persistence.engine import Limits, make_engine
from adapters.persistence.schema import upgrade
from application.access import Role
from entrypoints.http.auth import Authenticator
from harness.httpkit import midday_zone
from harness.postgres import postgres_database, run_apart

SECRET = "two-processes-secret-" + "s" * 64
BURST = 100
authenticator = Authenticator(SECRET)


def bearer(role: Role, sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {authenticator.token(role, sub)}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def migrate(url: str) -> None:
    engine = make_engine(url, Limits(pool_size=1))
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


@contextlib.contextmanager
def servers(count: int, env: dict[str, str], folder: Path) -> Iterator[list[tuple[str, Path]]]:
    """Start `serve` `count` times; give (base URL, log file) of each; SIGTERM them all at the end."""
    started: list[tuple[subprocess.Popen[bytes], Path]] = []
    bases = []
    try:
        for n in range(count):
            port, log = free_port(), folder / f"serve-{n}.log"
            data = folder / f"data-{n}"
            with log.open("wb") as output:
                process = subprocess.Popen(
                    [sys.executable, "-m", "entrypoints", "serve", "--port", str(port)],
                    env={**env, "WAITLINE_DATA_DIR": str(data)},
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            started.append((process, log))
            bases.append((f"http://127.0.0.1:{port}", log))
        yield bases
    finally:
        for process, _ in started:
            process.send_signal(signal.SIGTERM)
        for process, log in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise AssertionError(f"serve did not stop on SIGTERM: {log.read_text()}") from None
    for process, log in started:
        said = log.read_text()
        # uvicorn re-raises the signal after a graceful shutdown, so the exit status names it.
        assert process.returncode in (0, -signal.SIGTERM), said
        assert "Application shutdown complete" in said, said
        assert "Traceback" not in said, said


def logged(log: Path) -> str:
    return log.read_text(errors="replace")


async def ready(client: httpx.AsyncClient, base: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(httpx.TransportError):
            response = await client.get(f"{base}/health/ready")
            if response.status_code == 200:
                return
        assert time.monotonic() < deadline, f"{base} not ready: {logged(log)}"
        await asyncio.sleep(0.1)


async def test_v2_registrations_split_over_two_processes_are_numbered_once_each_in_order(
    redis_url: str, tmp_path: Path
) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    with postgres_database() as database:
        run_apart(migrate(database))
        env = {
            **os.environ,
            "WAITLINE_DATABASE_URL": database,
            "WAITLINE_REDIS_URL": redis_url,
            "WAITLINE_REDIS_PREFIX": prefix,
            "WAITLINE_JWT_SECRET": SECRET,
            "WAITLINE_LOCK_WAIT_SECONDS": "30",
            "WAITLINE_LOG_LEVEL": "INFO",
        }
        redis = Redis.from_url(redis_url)
        try:
            with servers(2, env, tmp_path) as bases:
                limits = httpx.Limits(max_connections=200)
                async with httpx.AsyncClient(timeout=60, limits=limits) as client:
                    for base, log in bases:
                        await ready(client, base, log)
                    [first, _], [second, _] = bases
                    body = {"name": "Two doors", "waitingOpen": True, "timeZone": midday_zone()}
                    made = await client.post(f"{first}/stores", json=body, headers=bearer(Role.ADMIN, "root"))
                    assert made.status_code == 201, made.text
                    store = made.json()["id"]

                    async def join(base: str, customer: str) -> httpx.Response:
                        return await client.post(
                            f"{base}/v2/stores/{store}/waitings",
                            json={"partySize": 2},
                            headers=bearer(Role.CUSTOMER, customer),
                        )

                    answers = await asyncio.gather(
                        *(join((first, second)[n % 2], f"burst-{n}") for n in range(BURST))
                    )
                    assert [a.status_code for a in answers] == [201] * BURST, [
                        a.text for a in answers if a.status_code != 201
                    ]
                    numbers = sorted(a.json()["number"] for a in answers)
                    assert numbers == list(range(1, BURST + 1))
                    # Both processes registered, under the one lock in Redis.
                    assert await redis.exists(f"{prefix}store_waiting:{store}:fence")

                    # One at a time, alternating between the processes: first come, first numbered.
                    after = []
                    for n in range(10):
                        answer = await join((first, second)[n % 2], f"after-{n}")
                        assert answer.status_code == 201, answer.text
                        after.append(answer.json()["number"])
                    assert after == list(range(BURST + 1, BURST + 11))
        finally:
            keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
            if keys:
                await redis.delete(*keys)
            await redis.aclose()
