"""Live benchmark: a crowd of SSE streams on one store, opened at once, then fed by registrations.

For each profile, one `waitline serve` process: embedded (SQLite in a data folder of the run's own,
in-process notifier) and Redis (a PostgreSQL database of the run's own, created, migrated and
dropped at the end, with live events, the lock and statuses on Redis under a prefix of the run's
own, deleted at the end). The client is this process: lean asyncio HTTP/1.1 (a V2 registration per
connection, as a phone would; each stream a bare protocol that timestamps every read as it arrives).
Measures, in the same run:

Opening (`GET /stores/{id}/events` with the store's staff token, all at once):
  v2-loop           V2 registrations for distinct customers on another store, one after another,
                    for --loop-seconds with no stream opening (baseline): latency p50/p99/max, and
                    the server's CPU per registration
  open              --streams streams opened at once: wall time until every one has its `snapshot`
                    event, the server's CPU meanwhile (/proc/<pid>/stat utime+stime), per stream;
                    then all closed
  open+v2-loop      the same again with the V2 loop running meanwhile: its latency while they open

Fan-out, each of --events V2 registrations on the streamed store sent one after another, each once
every subscriber has the previous one:
  fan-out/1         one subscriber on a store of its own (baseline)
  fan-out/N         the --streams streams left open by open+v2-loop
  From just before the registration is sent until a subscriber's socket read that brings its
  `registered` event: p50/p99/max over every subscriber and event; also the V2 answer's own latency.

Results go to bench/RESULTS.md and the README between the live markers.

    .venv/bin/python bench/live.py [--streams 1000] [--events 20] [--loop-seconds 3] [--profiles embedded,redis]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import asyncpg
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
SECRET = "bench-secret-bench-secret-bench-secret"
sys.path.insert(0, str(ROOT / "src"))

from application.access import Role  # noqa: E402
from drain import _database  # noqa: E402
from entrypoints.http.auth import Authenticator  # noqa: E402
from sections import replace_section  # noqa: E402

TOKENS = Authenticator(SECRET)
TICK = os.sysconf("SC_CLK_TCK")
SNAPSHOT, REGISTERED = b"event: snapshot", b"event: registered"
OPEN_WITHIN = 120.0  # seconds for every stream to get its snapshot
DELIVER_WITHIN = 30.0  # seconds for every subscriber to get one event
CALL_TIMEOUT = 30.0
SOURCES = ("application/", "adapters/", "domain/", "entrypoints/", "litestar/", "sqlalchemy/")


# -- client ------------------------------------------------------------------------------------


class Client:
    """Just enough HTTP/1.1: a request per connection, `Connection: close`, JSON in and out."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def call(
        self, method: str, path: str, token: str | None = None, body: Any = None
    ) -> tuple[int, Any]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            payload = b"" if body is None else json.dumps(body).encode()
            head = [f"{method} {path} HTTP/1.1", "Host: bench", "Connection: close"]
            if token:
                head.append(f"Authorization: Bearer {token}")
            if body is not None:
                head += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
            answer = await asyncio.wait_for(reader.read(), CALL_TIMEOUT)
        finally:
            writer.close()
        status_line, _, rest = answer.partition(b"\r\n")
        headers, _, content = rest.partition(b"\r\n\r\n")
        if b"transfer-encoding: chunked" in headers.lower():
            content = _dechunk(content)[0]
        return int(status_line.split()[1]), json.loads(content) if content else None


def _dechunk(raw: bytes) -> tuple[bytes, bool]:
    """The body of a chunked message (as far as it is complete), and whether it ended."""
    body, at = bytearray(), 0
    while (line_end := raw.find(b"\r\n", at)) >= 0:
        size = int(raw[at:line_end].split(b";")[0], 16)
        if size == 0:
            return bytes(body), True
        if line_end + 2 + size > len(raw):
            break
        body += raw[line_end + 2 : line_end + 2 + size]
        at = line_end + 2 + size + 2
    return bytes(body), False


class Crowd:
    """The streams of one store: counts of snapshots and `registered` events as they arrive."""

    def __init__(self) -> None:
        self.streams: list[Stream] = []
        self.answered = self.snapshots = self.failed = self.registered = 0
        self.target = 0
        self.reached = asyncio.Event()

    def expect(self, target: int) -> None:
        self.target = target
        self.reached.clear()
        self._check()

    def _check(self) -> None:
        if self.target and self.progress() >= self.target:
            self.reached.set()

    def progress(self) -> int:
        return self.registered if self.registered_phase else self.snapshots + self.failed

    registered_phase = False


class Stream(asyncio.Protocol):
    """One SSE subscriber: every read kept with the time it arrived; the hot path only counts."""

    def __init__(self, crowd: Crowd, request: bytes) -> None:
        self.crowd, self.request = crowd, request
        self.reads: list[tuple[float, bytes]] = []
        self.registered_at: list[float] = []
        self.status = 0
        self.snapshot = False
        self.closed = False
        self.transport: asyncio.Transport | None = None
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.reads.append((now, data))
        crowd = self.crowd
        if not self.status:
            self.status = int(data[9:12]) if data.startswith(b"HTTP/1.1 ") else -1
            if self.status != 200:
                crowd.failed += 1
                crowd._check()
                return
        window = self._tail + data
        if not self.snapshot and SNAPSHOT in window:
            self.snapshot = True
            crowd.snapshots += 1
            crowd._check()
        if (found := window.count(REGISTERED) - self._tail.count(REGISTERED)) > 0:
            self.registered_at += [now] * found
            crowd.registered += found
            crowd._check()
        self._tail = window[-len(REGISTERED) :]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.snapshot and self.status == 200:
            self.status = -2  # ended before its snapshot
            self.crowd.failed += 1
            self.crowd._check()

    def events(self) -> list[tuple[str, str, Any]]:
        """(type, id, data) of every event received, parsed once the measuring is over."""
        raw = b"".join(data for _, data in self.reads)
        head, _, rest = raw.partition(b"\r\n\r\n")
        body = _dechunk(rest)[0] if b"transfer-encoding: chunked" in head.lower() else rest
        events = []
        for block in body.decode().split("\r\n\r\n"):
            fields: dict[str, str] = {}
            for line in block.split("\r\n"):
                name, _, value = line.partition(": ")
                fields[name] = value
            if "event" in fields:
                events.append(
                    (fields["event"], fields.get("id", ""), json.loads(fields.get("data") or "null"))
                )
        return events

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def _open(port: int, crowd: Crowd, path: str, token: str, n: int) -> None:
    loop = asyncio.get_running_loop()
    head = [
        f"GET {path} HTTP/1.1",
        "Host: bench",
        "Accept: text/event-stream",
        f"Authorization: Bearer {token}",
    ]
    request = ("\r\n".join(head) + "\r\n\r\n").encode()

    async def one() -> None:
        stream = Stream(crowd, request)
        crowd.streams.append(stream)
        try:
            await loop.create_connection(lambda: stream, "127.0.0.1", port)
        except OSError:
            stream.status = -3
            crowd.failed += 1
            crowd._check()

    await asyncio.gather(*(one() for _ in range(n)))


async def _close(crowd: Crowd) -> None:
    for stream in crowd.streams:
        stream.close()
    for _ in range(200):
        if all(stream.closed for stream in crowd.streams):
            return
        await asyncio.sleep(0.01)


# -- measuring ---------------------------------------------------------------------------------


def _cpu(pid: int) -> float:
    """The process's user+system CPU seconds so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def _settle(pid: int, most: float = 10.0) -> None:
    """Until the server has been (almost) idle for a quarter of a second."""
    deadline = time.perf_counter() + most
    while time.perf_counter() < deadline:
        before = _cpu(pid)
        await asyncio.sleep(0.25)
        if _cpu(pid) - before <= 0.02:
            return


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


@dataclass
class Loop:
    """V2 registrations one after another for distinct customers on one store."""

    latencies: list[float] = field(default_factory=list)
    failures: Counter[int] = field(default_factory=Counter)
    cpu: float = 0.0
    seconds: float = 0.0

    def p(self, share: float) -> float:
        return _percentile(self.latencies, share) if self.latencies else float("nan")


@dataclass
class Opening:
    streams: int
    ok: int = 0
    failures: Counter[int] = field(default_factory=Counter)
    wall: float = 0.0
    cpu: float = 0.0
    loop: Loop | None = None


@dataclass
class FanOut:
    subscribers: int
    events: int
    answers: list[float] = field(default_factory=list)
    """Each V2 registration's own latency."""
    deliveries: list[float] = field(default_factory=list)
    """From just before each registration is sent to each subscriber's read of its event."""
    missing: int = 0
    spread: list[float] = field(default_factory=list)
    """Per event: its last subscriber's delivery less its first's."""


@dataclass
class Profile:
    name: str
    describe: str = ""
    baseline: Loop = field(default_factory=Loop)
    openings: list[Opening] = field(default_factory=list)
    fan_outs: list[FanOut] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class Bench:
    def __init__(self, port: int, pid: int) -> None:
        self.client, self.port, self.pid = Client(port), port, pid
        self.admin = TOKENS.token(Role.ADMIN, "bench")
        self.stamp = f"{time.monotonic_ns()}"
        self.customers = 0

    def customer(self) -> str:
        self.customers += 1
        return TOKENS.token(Role.CUSTOMER, f"b{self.stamp}-{self.customers}")

    async def ready(self) -> None:
        for _ in range(600):
            with contextlib.suppress(OSError, ValueError, IndexError):
                if (await self.client.call("GET", "/health/ready"))[0] == 200:
                    return
            await asyncio.sleep(0.1)
        raise RuntimeError("the server did not become ready")

    async def store(self, name: str) -> tuple[int, str]:
        status, store = await self.client.call(
            "POST", "/stores", self.admin, {"name": name, "waitingOpen": True}
        )
        assert status == 201, store
        store_id = int(store["id"])
        return store_id, TOKENS.token(Role.STORE, f"staff-{store_id}", store_id)

    async def register(self, store_id: int) -> tuple[int, Any]:
        return await self.client.call(
            "POST", f"/v2/stores/{store_id}/waitings", self.customer(), {"partySize": 2}
        )

    async def loop(self, store_id: int, result: Loop, stop: asyncio.Event, seconds: float | None) -> None:
        began, cpu = time.perf_counter(), _cpu(self.pid)
        while not stop.is_set() and (seconds is None or time.perf_counter() - began < seconds):
            started = time.perf_counter()
            status, _ = await self.register(store_id)
            if status == 201:
                result.latencies.append(time.perf_counter() - started)
            else:
                result.failures[status] += 1
        result.seconds, result.cpu = time.perf_counter() - began, _cpu(self.pid) - cpu

    async def open(self, crowd: Crowd, store_id: int, token: str, n: int, loop_store: int | None) -> Opening:
        result = Opening(n)
        stop, loop_task = asyncio.Event(), None
        if loop_store is not None:
            result.loop = Loop()
            loop_task = asyncio.create_task(self.loop(loop_store, result.loop, stop, None))
            await asyncio.sleep(0)  # its first request is on its way
        crowd.expect(n)
        cpu, started = _cpu(self.pid), time.perf_counter()
        await _open(self.port, crowd, f"/stores/{store_id}/events", token, n)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(crowd.reached.wait(), OPEN_WITHIN)
        result.wall, result.cpu = time.perf_counter() - started, _cpu(self.pid) - cpu
        stop.set()
        if loop_task is not None:
            await loop_task
        result.ok = crowd.snapshots
        result.failures = Counter(s.status for s in crowd.streams if not s.snapshot)
        return result

    async def fan_out(self, crowd: Crowd, store_id: int, events: int) -> FanOut:
        live = [stream for stream in crowd.streams if stream.snapshot and not stream.closed]
        result = FanOut(len(live), events)
        crowd.registered_phase = True
        sent: dict[int, float] = {}
        for i in range(events):
            crowd.expect(crowd.registered + len(live))
            started = time.perf_counter()
            status, waiting = await self.register(store_id)
            result.answers.append(time.perf_counter() - started)
            assert status == 201, waiting
            sent[int(waiting["id"])] = started
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(crowd.reached.wait(), DELIVER_WITHIN)
            if i + 1 < events:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)
        arrivals: dict[int, list[float]] = {key: [] for key in sent}
        for stream in live:
            registered = [data for kind, _, data in stream.events() if kind == "registered"]
            assert len(registered) == len(stream.registered_at), "a split event marker"
            for data, at in zip(registered, stream.registered_at, strict=True):
                if (key := int(data["id"])) in sent:
                    arrivals[key].append(at)
        for key, times in arrivals.items():
            result.missing += len(live) - len(times)
            result.deliveries += [at - sent[key] for at in times]
            if times:
                result.spread.append(max(times) - min(times))
        return result


async def _measure(
    args: argparse.Namespace, port: int, pid: int, profile: Profile, spy: str | None, folder: Path
) -> None:
    bench = Bench(port, pid)
    await bench.ready()
    streamed, staff = await bench.store("Streamed")
    single, single_staff = await bench.store("Single")
    looped, _ = await bench.store("Looped")
    warm, warm_staff = await bench.store("Warm")
    # Warm-up: registrations, and a few streams opened and fed.
    crowd = Crowd()
    await bench.open(crowd, warm, warm_staff, 20, None)
    await bench.fan_out(crowd, warm, 3)
    await _close(crowd)
    await bench.loop(looped, Loop(), asyncio.Event(), 0.5)
    await _settle(pid)

    await bench.loop(looped, profile.baseline, asyncio.Event(), args.loop_seconds)
    print(f"{profile.name}: v2-loop {len(profile.baseline.latencies)} registrations")
    await _settle(pid)

    crowd = Crowd()
    await bench.open(crowd, single, single_staff, 1, None)
    profile.fan_outs.append(await bench.fan_out(crowd, single, args.events))
    await _close(crowd)
    await _settle(pid)

    crowd = Crowd()
    with _spy(spy, pid, folder / "open.txt") as report:
        profile.openings.append(await bench.open(crowd, streamed, staff, args.streams, None))
    if report:
        profile.problems.append(report())
    print(f"{profile.name}: open {profile.openings[-1].ok} in {profile.openings[-1].wall:.2f} s")
    await _close(crowd)
    await _settle(pid)

    crowd = Crowd()
    profile.openings.append(await bench.open(crowd, streamed, staff, args.streams, looped))
    print(f"{profile.name}: open+v2-loop {profile.openings[-1].ok} in {profile.openings[-1].wall:.2f} s")
    await _settle(pid)
    profile.fan_outs.append(await bench.fan_out(crowd, streamed, args.events))
    print(f"{profile.name}: fan-out to {profile.fan_outs[-1].subscribers}")
    await _close(crowd)


@contextlib.contextmanager
def _spy(binary: str | None, pid: int, output: Path) -> Iterator[Any]:
    """py-spy sampling the server while the block runs; yields a function summarising it, or None."""
    if binary is None:
        yield None
        return
    command = [
        binary,
        "record",
        "--pid",
        str(pid),
        "--format",
        "raw",
        "--rate",
        "200",
        "--gil",
        "-o",
        str(output),
    ]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)

    def summary() -> str:
        own: Counter[str] = Counter()
        inside: Counter[str] = Counter()
        total = 0
        for line in output.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = stack.split(";")
            total += int(count)
            own[frames[-1]] += int(count)
            for frame in set(frames):
                inside[frame] += int(count)
        top_own = ", ".join(f"{frame} {n / total:.0%}" for frame, n in own.most_common(8))
        ours = [
            (f, n)
            for f, n in inside.most_common(400)
            if f.split("(")[-1].startswith(SOURCES) and n < 0.7 * total  # not the entry chain
        ]
        top_in = ", ".join(f"{frame} {n / total:.0%}" for frame, n in ours[:10])
        return f"py-spy ({total} samples): self: {top_own}\ninclusive (src): {top_in}"

    try:
        yield summary
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=30)


# -- servers -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _server(extra: dict[str, str], folder: Path) -> Iterator[tuple[int, int]]:
    """`waitline serve`, one process, on a free port; stopped (SIGTERM, then SIGKILL) afterwards."""
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("WAITLINE_")}
    env.update(
        {
            "WAITLINE_DATA_DIR": str(folder),
            "WAITLINE_JWT_SECRET": SECRET,
            "WAITLINE_LOG_LEVEL": "WARNING",
            **extra,
        }
    )
    command = [sys.executable, "-m", "entrypoints", "serve", "--port", str(port)]
    with (folder / "serve.log").open("wb") as log:
        server = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=log)
    try:
        yield port, server.pid
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


async def _forget(redis_url: str, prefix: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        for start_at in range(0, len(keys), 1000):
            await client.delete(*keys[start_at : start_at + 1000])
    finally:
        await client.aclose()


def _log_problems(folder: Path) -> list[str]:
    text = (folder / "serve.log").read_text(errors="replace")
    lines = [line for line in text.splitlines() if "ERROR" in line or "Traceback" in line]
    return [f"serve.log: {len(lines)} error lines, e.g. {lines[:2]}"] if lines else []


def _discard(folder: Path, keep: bool) -> None:
    if keep:
        print(f"kept {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)


async def _embedded(args: argparse.Namespace, versions: dict[str, str]) -> Profile:
    profile = Profile("embedded")
    profile.describe = "SQLite, in-process notifier"
    folder = Path(tempfile.mkdtemp(prefix="waitline-bench-live-"))
    try:
        with _server({}, folder) as (port, pid):
            await _measure(args, port, pid, profile, args.py_spy, folder)
        profile.problems += _log_problems(folder)
    finally:
        _discard(folder, args.keep_logs)
    versions["sqlite"] = sqlite3.sqlite_version
    return profile


async def _redis(args: argparse.Namespace, versions: dict[str, str]) -> Profile:
    profile = Profile("redis")
    profile.describe = "PostgreSQL, live events on Redis"
    prefix = f"waitline-bench-{secrets.token_hex(4)}:"
    folder = Path(tempfile.mkdtemp(prefix="waitline-bench-live-"))
    try:
        async with _database(args.dsn) as url:
            db = await asyncpg.connect(url)
            versions["postgres"] = str(await db.fetchval("SHOW server_version")).split()[0]
            await db.close()
            redis = Redis.from_url(args.redis)
            versions["redis"] = str((await redis.info("server"))["redis_version"])
            await redis.aclose()
            extra = {
                "WAITLINE_DATABASE_URL": url,
                "WAITLINE_REDIS_URL": args.redis,
                "WAITLINE_REDIS_PREFIX": prefix,
            }
            with _server(extra, folder) as (port, pid):
                await _measure(args, port, pid, profile, args.py_spy, folder)
            profile.problems += _log_problems(folder)
    finally:
        await _forget(args.redis, prefix)
        _discard(folder, args.keep_logs)
    return profile


# -- report ------------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds >= 0.1 else f"{seconds * 1000:.1f} ms"


def _failures(failures: Counter[int]) -> str:
    names = {-1: "bad answer", -2: "closed early", -3: "refused", 0: "no answer"}
    return ", ".join(f"{n} {names.get(status, status)}" for status, n in sorted(failures.items())) or "0"


def report(args: argparse.Namespace, profiles: list[Profile], versions: dict[str, str]) -> str:
    open_rows, fan_rows = [], []
    for p in profiles:
        base = p.baseline
        per_registration = base.cpu / max(1, len(base.latencies))
        open_rows.append(
            f"| {p.name} | v2-loop | — | {_ms(base.seconds)} | {base.cpu:.2f} s | — | {len(base.latencies)} "
            f"| {_ms(base.p(0.5))} | {_ms(base.p(0.99))} | {_ms(max(base.latencies))} | 1.00x |"
        )
        for o in p.openings:
            name = "open" if o.loop is None else "open+v2-loop"
            streams = f"{o.ok:,}/{o.streams:,}" + (f" ({_failures(o.failures)})" if o.failures else "")
            cpu_per_stream = (o.cpu - (len(o.loop.latencies) * per_registration if o.loop else 0)) / max(
                1, o.ok
            )
            if o.loop is None or not o.loop.latencies:
                loop = "| — | — | — | — | — |"
            else:
                l_ = o.loop
                loop = (
                    f"| {len(l_.latencies)} | {_ms(l_.p(0.5))} | {_ms(l_.p(0.99))} | {_ms(max(l_.latencies))} "
                    f"| {l_.p(0.99) / base.p(0.99):.1f}x |"
                )
            open_rows.append(
                f"| {p.name} | {name} | {streams} | {_ms(o.wall)} | {o.cpu:.2f} s | {cpu_per_stream * 1000:.2f} ms {loop}"
            )
        one = p.fan_outs[0]
        for f in p.fan_outs:
            d = f.deliveries
            if not d:
                fan_rows.append(
                    f"| {p.name} | fan-out/{f.subscribers} | {f.subscribers} | 0 | — | — | — | — | — | — |"
                )
                continue
            fan_rows.append(
                f"| {p.name} | fan-out/{f.subscribers} | {f.events} | {len(d):,}"
                + (f" ({f.missing} missing)" if f.missing else "")
                + f" | {_ms(statistics.median(f.answers))} | {_ms(_percentile(d, 0.5))} | {_ms(_percentile(d, 0.99))} "
                f"| {_ms(max(d))} | {_ms(statistics.median(f.spread))} "
                f"| {_percentile(d, 0.5) / _percentile(one.deliveries, 0.5):.1f}x / "
                f"{_percentile(d, 0.99) / _percentile(one.deliveries, 0.99):.1f}x |"
            )
    names = ",".join(p.name for p in profiles)
    describe = "; ".join(f"{p.name}: {p.describe}" for p in profiles)
    stores = []
    if "postgres" in versions:
        stores.append(f"PostgreSQL {versions['postgres']}, Redis {versions['redis']} (loopback)")
    if "sqlite" in versions:
        stores.append(f"SQLite {versions['sqlite']}")
    lines = [
        "## Live: a thousand streams on one store, opened at once and fed",
        "",
        f"`bench/live.py --streams {args.streams} --events {args.events} --loop-seconds {args.loop_seconds:g} "
        f"--profiles {names}`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, Litestar {version('litestar')}, uvicorn {version('uvicorn')}, "
        f"redis-py {version('redis')}, {', '.join(stores)}. One `waitline serve` process per profile ({describe}); "
        "the client in the bench process on the same CPUs, lean asyncio HTTP/1.1, over loopback.",
        "",
        "| profile | scenario | streams with a snapshot | wall | server CPU | CPU per stream "
        "| V2 registrations | V2 p50 | V2 p99 | V2 max | V2 p99 vs v2-loop |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *open_rows,
        "",
        f"v2-loop: V2 registrations for distinct customers on one store, one after another (a connection each), "
        f"for {args.loop_seconds:g} s with no stream opening (baseline). open: {args.streams:,} "
        "`GET /stores/{id}/events` with the store's staff token connected at once; wall: until every one has its "
        "`snapshot` event; server CPU: the server process's utime+stime meanwhile (/proc), per stream. "
        "open+v2-loop: the same (after the first crowd was closed) with the V2 loop running meanwhile on another "
        "store; CPU per stream there is less the loop's registrations at the baseline's CPU each.",
        "",
        "| profile | scenario | events | deliveries | V2 answer p50 | delivery p50 | p99 | max "
        "| spread per event (median) | p50 / p99 vs fan-out/1 |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *fan_rows,
        "",
        "fan-out/S: S subscribers of one store's stream (fan-out/1: one on a store of its own, the baseline; the "
        "large one: the streams left open by open+v2-loop); each event a V2 registration on that store, sent once "
        "every subscriber has the previous one. delivery: from just before the registration's request is sent to "
        "the subscriber's socket read that brings its `registered` event (timestamped as the read arrives), over "
        "every subscriber and event; spread: per event, its last delivery less its first.",
    ]
    for p in profiles:
        lines += [f"\n{p.name}: {problem}" for problem in p.problems]
    return "\n".join(lines)


def _write(section: str) -> None:
    replace_section(RESULTS, "live", section)
    replace_section(ROOT / "README.md", "live", section.split("\n", 2)[2])


async def run(args: argparse.Namespace) -> tuple[list[Profile], dict[str, str]]:
    versions: dict[str, str] = {}
    profiles = []
    for name in args.profiles:
        profiles.append(await (_embedded if name == "embedded" else _redis)(args, versions))
    return profiles, versions


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--loop-seconds", type=float, default=3.0)
    parser.add_argument(
        "--profiles",
        type=lambda text: [name for name in text.split(",") if name],
        default=["embedded", "redis"],
        help="comma-separated, of embedded and redis (default: both)",
    )
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--py-spy", help="a py-spy binary: sample the server during `open`, print the top frames"
    )
    parser.add_argument("--no-write", action="store_true", help="print the results only")
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' folders (serve.log)")
    args = parser.parse_args()
    if unknown := set(args.profiles) - {"embedded", "redis"}:
        parser.error(f"unknown profiles: {', '.join(sorted(unknown))}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * args.streams + 1000
    if soft < wanted:
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted, hard)
        )
    started = time.perf_counter()
    profiles, versions = asyncio.run(run(args))
    section = report(args, profiles, versions)
    if not args.no_write:
        _write(section)
    print(section)
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
