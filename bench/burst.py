"""Burst benchmark: one hot store, many customers joining at once, over real HTTP.

Starts `waitline serve` on embedded defaults in a temporary folder, then measures, in the same run:
  baseline     one registration at a time (V2), the cost of a request without contention
  v2-burst     N concurrent V2 registrations: every answer is the decided Waiting
  v3-accept    N concurrent V3 submissions: time until every 202 QUEUED is answered
  v3-decided   ... and until the store counts all N as registered
Ratios are throughput against the baseline. The client is a lean asyncio HTTP/1.1 client (one
connection per request, as N different phones would), so that the 2-core machine's time goes to
the server rather than to the client. Results go to bench/RESULTS.md and into the README.

    .venv/bin/python bench/burst.py [--n 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
SECRET = "bench-secret-bench-secret-bench-secret"
sys.path.insert(0, str(ROOT / "src"))

from application.access import Role  # noqa: E402
from entrypoints.http.auth import Authenticator  # noqa: E402
from sections import replace_section  # noqa: E402

TOKENS = Authenticator(SECRET)


class Client:
    """Just enough HTTP/1.1: a request per connection, `Connection: close`, JSON in and out."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def call(
        self, method: str, path: str, token: str | None = None, body: Any = None
    ) -> tuple[int, Any]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        payload = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", "Host: bench", "Connection: close"]
        if token:
            head.append(f"Authorization: Bearer {token}")
        if body is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        answer = await reader.read()
        writer.close()
        status_line, _, rest = answer.partition(b"\r\n")
        _, _, content = rest.partition(b"\r\n\r\n")
        return int(status_line.split()[1]), json.loads(content) if content else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _customers(n: int) -> list[str]:
    stamp = time.monotonic_ns()
    return [TOKENS.token(Role.CUSTOMER, f"bench-{stamp}-{i}") for i in range(n)]


async def _store(client: Client, admin: str) -> int:
    status, store = await client.call("POST", "/stores", admin, {"name": "Bench", "waitingOpen": True})
    assert status == 201, store
    return int(store["id"])


async def _wait_ready(client: Client) -> None:
    for _ in range(300):
        with contextlib.suppress(OSError):
            if (await client.call("GET", "/health/ready"))[0] == 200:
                return
        await asyncio.sleep(0.05)
    raise RuntimeError("the server did not become ready")


async def _baseline(client: Client, admin: str, n: int) -> float:
    store_id, customers = await _store(client, admin), _customers(n)
    started = time.perf_counter()
    for token in customers:
        status, _ = await client.call("POST", f"/v2/stores/{store_id}/waitings", token, {"partySize": 2})
        assert status == 201
    return time.perf_counter() - started


async def _v2_burst(client: Client, admin: str, n: int) -> float:
    store_id, customers = await _store(client, admin), _customers(n)
    path = f"/v2/stores/{store_id}/waitings"
    started = time.perf_counter()
    answers = await asyncio.gather(*(client.call("POST", path, t, {"partySize": 2}) for t in customers))
    elapsed = time.perf_counter() - started
    assert sorted(w["number"] for s, w in answers if s == 201) == list(range(1, n + 1)), "wrong numbers"
    return elapsed


async def _v3_burst(client: Client, admin: str, n: int) -> tuple[float, float]:
    store_id, customers = await _store(client, admin), _customers(n)
    path = f"/v3/stores/{store_id}/waitings"
    started = time.perf_counter()
    answers = await asyncio.gather(*(client.call("POST", path, t, {"partySize": 2}) for t in customers))
    accepted = time.perf_counter() - started
    assert {s for s, _ in answers} == {202}
    for _ in range(20_000):  # polled: the store's count is what a customer would watch
        if (await client.call("GET", f"/stores/{store_id}"))[1]["waitingCount"] >= n:
            break
        await asyncio.sleep(0.005)
    decided = time.perf_counter() - started
    _, listed = await client.call("GET", f"/stores/{store_id}/waitings", admin)
    assert [w["number"] for w in listed["items"]] == list(range(1, n + 1)), "wrong numbers"
    return accepted, decided


@contextlib.contextmanager
def _server() -> Iterator[int]:
    """`waitline serve` on embedded defaults in a fresh folder, on a free port."""
    port = _free_port()
    env = {
        **os.environ,
        "WAITLINE_DATA_DIR": tempfile.mkdtemp(prefix="waitline-bench-"),
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
    client, admin = Client(port), TOKENS.token(Role.ADMIN, "bench")
    timings: dict[str, list[float]] = {"baseline": [], "v2-burst": [], "v3-accept": [], "v3-decided": []}
    await _wait_ready(client)
    await _v2_burst(client, admin, 20)  # warm-up
    for _ in range(rounds):
        timings["baseline"].append(await _baseline(client, admin, n))
        timings["v2-burst"].append(await _v2_burst(client, admin, n))
        accepted, decided = await _v3_burst(client, admin, n)
        timings["v3-accept"].append(accepted)
        timings["v3-decided"].append(decided)
    return timings


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
            "queue in SQLite), one server process; the client in another process over loopback HTTP, "
            "one connection per request.",
            "",
            "| scenario | requests | median time | throughput | vs baseline |",
            "|---|---|---|---|---|",
            *rows,
            "",
            "baseline: the same requests one at a time (V2). A ratio above 1 means the burst is served "
            "faster than the same requests sent one by one.",
            "",
        ]
    )


def _show_in_readme(text: str) -> None:
    replace_section(ROOT / "README.md", "bench", text.split("\n", 2)[2])


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
    replace_section(RESULTS, "burst", text.split("\n", 2)[2])
    _show_in_readme(text)
    print(text)


if __name__ == "__main__":
    main()
