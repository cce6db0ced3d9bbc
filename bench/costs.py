"""Costs benchmark (issue 21): what one request costs as a store's day grows to N entries.

For each profile (embedded: SQLite in a temporary WAITLINE_DATA_DIR; postgres: a fresh database on
--dsn, migrated by `waitline migrate`, dropped at the end; no Redis) and each N, on a database of
its own:

  fill         with no server running, one store (open, no maxQueueSize, a time zone where it is
               about noon, so the business day does not roll over) gets N WAITING entries through
               the product's own use case, the V3 worker's (`Container().process()`), in batches
               of --fill-batch: whatever the storage maintains with each registration is kept
               as the service keeps it; on PostgreSQL then `VACUUM ANALYZE` (autovacuum would
               soon; a list filled in seconds would otherwise be planned as an empty table)
  then         `waitline serve` on that data, and one request at a time over one keep-alive
               loopback connection (a lean HTTP/1.1 client; time from the request written to its
               whole answer read), after a few of each kind as a warm-up:
  v2           --requests V2 registrations (`POST /v2/stores/{id}/waitings`), new customers
  own read     --requests `GET /waitings/{id}` with the customer's own token, over waitings spread
               evenly from the front of the list to its back (a rank counts those ahead)
  public view  --requests `GET /stores/{id}` with no If-None-Match, so each is computed
  staff page   --requests `GET /stores/{id}/waitings` with a store token: the first page at the
               default limit

Results go to bench/RESULTS.md and the README between the costs markers.

    .venv/bin/python bench/costs.py [--sizes 1000,10000,100000] [--profiles embedded,postgres]
        [--requests 200] [--fill-batch 2000] [--dsn postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import secrets
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RESULTS = ROOT / "bench" / "RESULTS.md"
SECRET = "bench-secret-bench-secret-bench-secret"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(1, str(ROOT / "tests"))

from application.access import Actor, Role  # noqa: E402
from application.requests import RequestState  # noqa: E402
from application.stores import NewStore  # noqa: E402
from entrypoints.container import Container, start, stop  # noqa: E402
from entrypoints.http.auth import Authenticator  # noqa: E402
from entrypoints.settings import Settings  # noqa: E402
from harness.httpkit import midday_zone  # noqa: E402
from sections import replace_section  # noqa: E402

TOKENS = Authenticator(SECRET)
ADMIN = Actor(Role.ADMIN, "bench")
WARM_UP = 10
LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)
KINDS = ("v2", "own read", "own read, back third", "public view", "staff page")
# The goal, from the smallest list to the largest: at most this many times slower.
GOALS = {"v2": 1.5, "own read": 1.5, "public view": 1.5, "staff page": 2.0}
GOAL_SIZES = (1_000, 100_000)


# -- the client ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    content: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.content)


class Connection:
    """One keep-alive HTTP/1.1 connection; a request is written only once the previous is answered."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    @classmethod
    @contextlib.asynccontextmanager
    async def to(cls, port: int) -> AsyncIterator[Connection]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            yield cls(reader, writer)
        finally:
            writer.close()

    async def call(self, method: str, path: str, token: str | None = None, body: Any = None) -> Answer:
        payload = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", "Host: bench"]
        if token:
            head.append(f"Authorization: Bearer {token}")
        if body is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        started = time.perf_counter()
        self._writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        header = await self._reader.readuntil(b"\r\n\r\n")
        length = LENGTH.search(header)
        if length is None:
            raise RuntimeError(f"an answer without Content-Length: {header!r}")
        content = await self._reader.readexactly(int(length.group(1)))
        return Answer(int(header.split(b" ", 2)[1]), content, time.perf_counter() - started)


# -- the data: a store's day pre-filled through the use case ---------------------------------------


@dataclass(frozen=True)
class Filled:
    store_id: int
    waiting_ids: list[int]
    """In line order: the first is at the front."""
    seconds: float


async def fill(settings: Settings, n: int, batch_size: int) -> Filled:
    """N customers registered as the V3 worker registers them, a batch per transaction."""
    container = Container()
    container.settings.override(settings)
    await start(container)
    try:
        new = NewStore(name="Bench", time_zone=midday_zone(), waiting_open=True)
        store_id = int((await container.create_store()(ADMIN, new))["id"])
        process, requests = container.process(), container.new_requests()
        ids: list[int] = []
        started = time.perf_counter()
        for first in range(0, n, batch_size):
            customers = [Actor(Role.CUSTOMER, f"fill-{i}") for i in range(first, min(n, first + batch_size))]
            outcomes = await process([requests.for_customer(c, store_id, 2) for c in customers])
            refused = [o for o in outcomes if o.state is not RequestState.REGISTERED]
            assert not refused, refused[:3]
            ids += [o.waiting_id for o in outcomes if o.waiting_id is not None]
        return Filled(store_id, ids, time.perf_counter() - started)
    finally:
        await stop(container)


# -- the profiles ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """Where one run's data lives: the settings for the fill, the environment for the server."""

    settings: Settings
    env: dict[str, str]
    dsn: str | None = None
    """PostgreSQL: the run's database, for asyncpg."""


def _environment(**values: str) -> dict[str, str]:
    # The caller's own WAITLINE_* settings (a Redis, a broker) must not leak into the run.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WAITLINE_")}
    # The server runs this tree's code, also from another checkout than the one installed.
    path = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    ours = {"PYTHONPATH": path, "WAITLINE_JWT_SECRET": SECRET, "WAITLINE_LOG_LEVEL": "WARNING"}
    return clean | ours | values


@contextlib.contextmanager
def embedded() -> Iterator[Place]:
    with tempfile.TemporaryDirectory(prefix="waitline-costs-") as folder:
        settings = Settings(data_dir=Path(folder), jwt_secret=SECRET, database_url=None, redis_url=None)
        yield Place(settings, _environment(WAITLINE_DATA_DIR=folder))


@contextlib.contextmanager
def postgres(dsn: str) -> Iterator[Place]:
    """A fresh database on the server, migrated by `waitline migrate`; dropped afterwards."""
    name = f"waitline_costs_{secrets.token_hex(4)}"
    asyncio.run(_execute(dsn, f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(dsn).set(database=name).render_as_string(hide_password=False)
        env = _environment(WAITLINE_DATABASE_URL=url)
        subprocess.run([sys.executable, "-m", "entrypoints", "migrate"], env=env, cwd=ROOT, check=True)
        with tempfile.TemporaryDirectory(prefix="waitline-costs-") as folder:
            settings = Settings(data_dir=Path(folder), jwt_secret=SECRET, database_url=url, redis_url=None)
            yield Place(settings, env, url)
    finally:
        asyncio.run(_execute(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _execute(dsn: str, statement: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _server_version(dsn: str) -> str:
    connection = await asyncpg.connect(dsn)
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(env: dict[str, str]) -> Iterator[int]:
    port = _free_port()
    command = [sys.executable, "-m", "entrypoints", "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    try:
        yield port
    finally:
        process.terminate()
        process.wait(timeout=60)


# -- the measurements ------------------------------------------------------------------------------


@dataclass
class Run:
    profile: str
    n: int
    fill_seconds: float = 0.0
    load: float = 0.0
    """The machine's 1-minute load average as the measurements ended (it is shared)."""
    seconds: dict[str, list[float]] = field(default_factory=dict)
    page_bytes: int = 0


async def _ready(port: int) -> None:
    for _ in range(600):
        with contextlib.suppress(OSError):
            async with Connection.to(port) as connection:
                if (await connection.call("GET", "/health/ready")).status == 200:
                    return
        await asyncio.sleep(0.05)
    raise RuntimeError("the server did not become ready")


async def _v2(connection: Connection, store_id: int, count: int, prefix: str) -> list[float]:
    path, seconds = f"/v2/stores/{store_id}/waitings", []
    for i in range(count):
        answer = await connection.call(
            "POST", path, TOKENS.token(Role.CUSTOMER, f"{prefix}-{i}"), {"partySize": 2}
        )
        assert answer.status == 201, answer
        seconds.append(answer.seconds)
    return seconds


def _spread(n: int, count: int) -> list[int]:
    """`count` places in line, from the front to the back, evenly."""
    return [round(i * (n - 1) / max(1, count - 1)) for i in range(count)]


async def _own_reads(connection: Connection, filled: Filled, places: list[int]) -> list[float]:
    seconds = []
    for place in places:
        token = TOKENS.token(Role.CUSTOMER, f"fill-{place}")
        answer = await connection.call("GET", f"/waitings/{filled.waiting_ids[place]}", token)
        assert answer.status == 200 and answer.json()["rank"] == place + 1, answer
        seconds.append(answer.seconds)
    return seconds


async def _public_views(connection: Connection, store_id: int, count: int, waiting: int) -> list[float]:
    seconds = []
    for _ in range(count):
        answer = await connection.call("GET", f"/stores/{store_id}")
        assert answer.status == 200 and answer.json()["waitingCount"] == waiting, answer
        seconds.append(answer.seconds)
    return seconds


async def _staff_pages(connection: Connection, store_id: int, count: int) -> tuple[list[float], int]:
    token, seconds, size = TOKENS.token(Role.STORE, "bench", store_id=store_id), [], 0
    for _ in range(count):
        answer = await connection.call("GET", f"/stores/{store_id}/waitings", token)
        page = answer.json()
        assert answer.status == 200 and page["next"] and page["items"][0]["rank"] == 1, answer
        seconds.append(answer.seconds)
        size = len(answer.content)
    return seconds, size


async def measure(port: int, filled: Filled, run: Run, count: int) -> None:
    await _ready(port)
    n, store_id = len(filled.waiting_ids), filled.store_id
    places = _spread(n, count)
    async with Connection.to(port) as connection:
        await _v2(connection, store_id, WARM_UP, "warm")
        await _own_reads(connection, filled, _spread(n, WARM_UP))
        await _public_views(connection, store_id, WARM_UP, n + WARM_UP)
        await _staff_pages(connection, store_id, WARM_UP)

        run.seconds["v2"] = await _v2(connection, store_id, count, "v2")
        reads = await _own_reads(connection, filled, places)
        run.seconds["own read"] = reads
        run.seconds["own read, back third"] = [
            s for s, p in zip(reads, places, strict=True) if p >= 2 * n / 3
        ]
        run.seconds["public view"] = await _public_views(connection, store_id, count, n + WARM_UP + count)
        run.seconds["staff page"], run.page_bytes = await _staff_pages(connection, store_id, count)
    run.load = os.getloadavg()[0]


def one(profile: str, place: Place, n: int, args: argparse.Namespace) -> Run:
    run = Run(profile, n)
    filled = asyncio.run(fill(place.settings, n, args.fill_batch))
    run.fill_seconds = filled.seconds
    if place.dsn:
        # What autovacuum does within a minute or so of a bulk insert. Without it the planner
        # still believes the table empty, and sorts the whole day for the staff list's first page
        # instead of reading it off the number index: an artefact of filling in seconds.
        asyncio.run(_execute(place.dsn, "VACUUM ANALYZE"))
    print(f"{profile} N={n:,}: filled in {filled.seconds:.1f} s", flush=True)
    with server(place.env) as port:
        asyncio.run(measure(port, filled, run, args.requests))
    return run


def runs(args: argparse.Namespace) -> list[Run]:
    done = []
    for profile in args.profiles:
        for n in args.sizes:
            with embedded() if profile == "embedded" else postgres(args.dsn) as place:
                done.append(one(profile, place, n, args))
    return done


# -- the report ------------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def _versions(args: argparse.Namespace) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    changed = subprocess.run(
        ["git", "status", "--porcelain", "src"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    parts = [
        f"commit {commit or '?'}{' with uncommitted changes in src/' if changed else ''}",
        f"Python {platform.python_version()}",
        f"{os.cpu_count()} CPUs",
    ]
    if "embedded" in args.profiles:
        parts.append(f"SQLite {sqlite3.sqlite_version}")
    if "postgres" in args.profiles:
        parts.append(f"PostgreSQL {asyncio.run(_server_version(args.dsn))} on the same machine")
    return ", ".join(parts)


def _summary(done: list[Run]) -> list[str]:
    rows = [
        "| profile | N | fill | V2 registration | own read (rank) | public store view | staff list, first page |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in done:
        mean = {kind: statistics.fmean(run.seconds[kind]) for kind in KINDS}
        rows.append(
            f"| {run.profile} | {run.n:,} | {run.fill_seconds:.1f} s | {_ms(mean['v2'])} | "
            f"{_ms(mean['own read'])} (back third {_ms(mean['own read, back third'])}) | "
            f"{_ms(mean['public view'])} | {_ms(mean['staff page'])}, {run.page_bytes / 1000:.1f} kB |"
        )
    return rows


def _details(done: list[Run]) -> list[str]:
    rows = [
        "| profile | N | request | count | p50 | p99 | mean | load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in done:
        for kind in KINDS:
            seconds = run.seconds[kind]
            rows.append(
                f"| {run.profile} | {run.n:,} | {kind} | {len(seconds)} | {_ms(statistics.median(seconds))} | "
                f"{_ms(_percentile(seconds, 0.99))} | {_ms(statistics.fmean(seconds))} | {run.load:.2f} |"
            )
    return rows


def _ratios(done: list[Run]) -> list[str]:
    rows = [
        "| profile | request | smallest N | largest N | ratio of means | ratio of p50s | goal | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for profile in dict.fromkeys(run.profile for run in done):
        mine = sorted((run for run in done if run.profile == profile), key=lambda run: run.n)
        small, large = mine[0], mine[-1]
        judged = (small.n, large.n) == GOAL_SIZES
        for kind, goal in GOALS.items():
            by_mean = statistics.fmean(large.seconds[kind]) / statistics.fmean(small.seconds[kind])
            by_p50 = statistics.median(large.seconds[kind]) / statistics.median(small.seconds[kind])
            verdict = ("**met**" if by_mean <= goal else "**not met**") if judged else "n/a"
            rows.append(
                f"| {profile} | {kind} | {small.n:,} | {large.n:,} | {by_mean:.2f}x | {by_p50:.2f}x | "
                f"≤ {goal}x | {verdict} |"
            )
    return rows


def report(done: list[Run], args: argparse.Namespace, command: str) -> str:
    return "\n".join(
        [
            "## Costs: one request at a time as a store's day grows to N entries (issue 21)",
            "",
            f"`{command}`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {_versions(args)}. One store, its day "
            f"pre-filled with N WAITING entries through the V3 worker's use case (batches of "
            f"{args.fill_batch}, server stopped; on PostgreSQL then `VACUUM ANALYZE`, as autovacuum "
            "would soon after), then `waitline serve` (one process, no Redis) and one "
            "request at a time over one keep-alive loopback connection, after a warm-up of "
            f"{WARM_UP} of each kind. The machine is shared with other benchmarks: see the load column.",
            "",
            *_summary(done),
            "",
            "Means. fill: registering the N entries in-process (not part of the table's costs). "
            "V2 registration: `POST /v2/stores/{id}/waitings`, a new customer each. Own read: "
            "`GET /waitings/{id}` with the customer's token, over waitings spread evenly from the front "
            "of the line to its back (back third: those in the last third, the worst case of a rank "
            "counted from the rows). Public store view: `GET /stores/{id}`, no If-None-Match, so each "
            "is computed. Staff list: `GET /stores/{id}/waitings` with a store token, the first page at "
            "the default limit (100), and its size.",
            "",
            *_details(done),
            "",
            "p50, p99 and mean of each request's time, written to answer read; load: the machine's "
            "1-minute load average when the row's measurements ended.",
            "",
            "Goal (issue 21): from 1,000 to 100,000 entries, V2, a customer's own read and the public "
            "view at most 1.5x slower, the staff list's first page at most 2x slower; judged on the means.",
            "",
            *_ratios(done),
            "",
        ]
    )


def _sizes(value: str) -> list[int]:
    return sorted(int(part) for part in value.split(","))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=_sizes, default=[1_000, 10_000, 100_000])
    parser.add_argument("--profiles", type=lambda v: v.split(","), default=["embedded", "postgres"])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--fill-batch", type=int, default=2_000)
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    args = parser.parse_args()
    if unknown := set(args.profiles) - {"embedded", "postgres"}:
        parser.error(f"unknown profiles: {', '.join(sorted(unknown))}")
    command = " ".join(["bench/costs.py", *sys.argv[1:]])
    text = report(runs(args), args, command)
    replace_section(RESULTS, "costs", text)
    replace_section(README, "costs", text.split("\n", 2)[2])
    print(text)


if __name__ == "__main__":
    main()
