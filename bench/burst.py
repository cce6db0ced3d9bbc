"""Burst benchmark: one hot store, many customers joining at once, over real HTTP.

Starts `waitline serve` on embedded defaults in a temporary folder, then measures, in the same run:
  baseline     one registration at a time (V2), the cost of a request without contention
  v2-burst     N concurrent V2 registrations: every answer is the decided Waiting
  v3-accept    N concurrent V3 submissions: time until every 202 QUEUED is answered
  v3-decided   ... and until every request is REGISTERED (polled)
Ratios are throughput against the baseline. Results go to bench/RESULTS.md and into the README's benchmark section.

    .venv/bin/python bench/burst.py [--n 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
SECRET = "bench-secret-bench-secret-bench-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _token(role: str, sub: str, store_id: int | None = None) -> str:
    sys.path.insert(0, str(ROOT / "src"))
    from application.access import Role
    from entrypoints.http.auth import Authenticator

    return Authenticator(SECRET).token(Role(role), sub, store_id)


async def _wait_ready(client: httpx.AsyncClient) -> None:
    for _ in range(200):
        try:
            if (await client.get("/health/ready")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError("the server did not become ready")


async def _store(client: httpx.AsyncClient, admin: dict[str, str]) -> int:
    answer = await client.post("/stores", json={"name": "Bench", "waitingOpen": True}, headers=admin)
    answer.raise_for_status()
    return int(answer.json()["id"])


def _customer(n: int) -> dict[str, str]:
    return {"Authorization": f"Bearer {_token('customer', f'bench-{n}-{time.monotonic_ns()}')}"}


async def _timed(work: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started


async def _baseline(client: httpx.AsyncClient, admin: dict[str, str], n: int) -> float:
    store_id = await _store(client, admin)
    headers = [_customer(i) for i in range(n)]

    async def sequential() -> None:
        for h in headers:
            (
                await client.post(f"/v2/stores/{store_id}/waitings", json={"partySize": 2}, headers=h)
            ).raise_for_status()

    return await _timed(sequential)


async def _v2_burst(client: httpx.AsyncClient, admin: dict[str, str], n: int) -> float:
    store_id = await _store(client, admin)
    headers = [_customer(i) for i in range(n)]

    async def burst() -> None:
        answers = await asyncio.gather(
            *(
                client.post(f"/v2/stores/{store_id}/waitings", json={"partySize": 2}, headers=h)
                for h in headers
            )
        )
        numbers = sorted(a.json()["number"] for a in answers if a.status_code == 201)
        assert numbers == list(range(1, n + 1)), "V2 burst gave wrong numbers"

    return await _timed(burst)


async def _v3_burst(client: httpx.AsyncClient, admin: dict[str, str], n: int) -> tuple[float, float]:
    store_id = await _store(client, admin)
    headers = [_customer(i) for i in range(n)]
    started = time.perf_counter()
    answers = await asyncio.gather(
        *(client.post(f"/v3/stores/{store_id}/waitings", json={"partySize": 2}, headers=h) for h in headers)
    )
    accepted = time.perf_counter() - started
    traces = [(a.json()["traceId"], h) for a, h in zip(answers, headers, strict=True)]
    numbers: list[int] = []
    for trace_id, h in traces:
        while True:
            status = (await client.get(f"/v3/waiting-requests/{trace_id}", headers=h)).json()
            if status["status"] != "QUEUED":
                numbers.append(status["waiting"]["number"])
                break
            await asyncio.sleep(0.005)
    decided = time.perf_counter() - started
    assert sorted(numbers) == list(range(1, n + 1)), "V3 burst gave wrong numbers"
    return accepted, decided


@contextlib.contextmanager
def _server() -> Iterator[int]:
    """`waitline serve` on embedded defaults in a fresh folder, on a free port."""
    port = _free_port()
    data_dir = tempfile.mkdtemp(prefix="waitline-bench-")
    env = {
        **os.environ,
        "WAITLINE_DATA_DIR": data_dir,
        "WAITLINE_JWT_SECRET": SECRET,
        "WAITLINE_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "entrypoints", "serve", "--port", str(port)]
    server = subprocess.Popen(command, env=env, cwd=ROOT)
    try:
        yield port
    finally:
        server.terminate()
        server.wait(timeout=60)


async def run(port: int, n: int, rounds: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {"baseline": [], "v2-burst": [], "v3-accept": [], "v3-decided": []}
    admin = {"Authorization": f"Bearer {_token('admin', 'bench')}"}
    async with _client(port, n) as client:
        await _wait_ready(client)
        await _v2_burst(client, admin, 20)  # warm-up
    for _ in range(rounds):
        # A fresh client per scenario: no idle keep-alive connection the server may have closed.
        async with _client(port, n) as client:
            timings["baseline"].append(await _baseline(client, admin, n))
        async with _client(port, n) as client:
            timings["v2-burst"].append(await _v2_burst(client, admin, n))
        async with _client(port, n) as client:
            accepted, decided = await _v3_burst(client, admin, n)
        timings["v3-accept"].append(accepted)
        timings["v3-decided"].append(decided)
    return timings


def _client(port: int, n: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60)


def report(n: int, timings: dict[str, list[float]]) -> str:
    base = statistics.median(timings["baseline"])
    rows = []
    for name, seconds in timings.items():
        median = statistics.median(seconds)
        rows.append(f"| {name} | {n} | {median * 1000:.0f} ms | {n / median:,.0f}/s | {base / median:.2f}x |")
    return "\n".join(
        [
            "# Benchmark results",
            "",
            f"`bench/burst.py --n {n} --rounds {len(timings['baseline'])}`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
            f"Python {platform.python_version()}, {os.cpu_count()} CPUs, embedded profile (SQLite, asyncio lock, "
            "in-process queue), one server process, client in another process over loopback HTTP.",
            "",
            "| scenario | requests | median time | throughput | vs baseline |",
            "|---|---|---|---|---|",
            *rows,
            "",
            "baseline: the same requests one at a time (V2). Throughput ratios above 1 mean the burst is served "
            "faster than the same requests sent one by one.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with _server() as port:
        timings = asyncio.run(run(port, args.n, args.rounds))
    text = report(args.n, timings)
    RESULTS.write_text(text)
    _show_in_readme(text)
    print(text)


def _show_in_readme(text: str) -> None:
    readme = ROOT / "README.md"
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    content = readme.read_text()
    if start in content and end in content:
        table = text.split("\n", 2)[2].strip()
        before, rest = content.split(start, 1)
        content = f"{before}{start}\n{table}\n{end}{rest.split(end, 1)[1]}"
        readme.write_text(content)


if __name__ == "__main__":
    main()
