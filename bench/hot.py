"""Hot-store benchmark (issue 16): how many registrations one hot store takes, measured from outside.

`waitline serve` (one process) on the embedded profile (SQLite in a fresh data folder, the asyncio
lock, the queue in SQLite) and, with `--profiles embedded,postgres`, on PostgreSQL (a fresh database
of its own on --dsn, migrated by `waitline migrate`, dropped at the end; no Redis, no Kafka: the
embedded queue in PostgreSQL, the asyncio lock) and, with `redis`, on PostgreSQL with Redis
(--redis-url: the Redis lock, request statuses on Redis; keys under a prefix of the run's own). In the same run and on the same uvicorn stack,
two ceilings served by bench/ceiling_app.py in its own process:
  trivial         POST /trivial: 202 `{}`, no work at all
  authenticated   POST /accept/{id}: the service's bearer check, a strict msgspec body, a traceId,
                  a typed 202; no storage: what an accept costs before any I/O
and on the service, one fresh open store per run (time zone where it is midday, no maxQueueSize):
  V3 accept       POST /v3/stores/{id}/waitings: 202 QUEUED; then the drain, the time from wrk's
                  end until the queue is empty (`waitline_queue_depth` on /metrics; goal: 1 s)
  V2 register     POST /v2/stores/{id}/waitings: 201 with the decided Waiting, under the lock
Each with wrk -t 2 --latency at each connection count, every request with its own customer token
(a Lua script over a file of pre-made tokens) and body `{"partySize": 2}`. Checked after each
registration run: the store's numbers are 1..n without gaps on one business day, n = the 2xx the
server answered (its own count on /metrics, which includes requests still in flight when wrk
stopped); for V3 also every accepted request decided. Recorded: the CPU seconds of wrk (its
rusage) and of the server process (/proc/<pid>/stat) during each run, to tell whether the load
generator is the bottleneck.

`--profile` runs V3 and V2 once more (at the first connection count) with py-spy sampling the
server (100 Hz, --nonblocking: the server is never paused, a sample may rarely be torn) and summarises the 15 functions with the most own time; the collapsed
stacks are kept as bench/hot-profile-<profile>-<scenario>.txt (speedscope opens them).

Results go to bench/RESULTS.md between the hot markers (and to the README only if it has them).

    .venv/bin/python bench/hot.py [--connections 64,500] [--seconds 10] [--profiles embedded[,postgres][,redis]] [--profile]
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
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import asyncpg
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "RESULTS.md"
README = ROOT / "README.md"
SECRET = "bench-secret-bench-secret-bench-secret"
sys.path.insert(0, str(ROOT / "src"))

from adapters.persistence.engine import Limits, make_engine  # noqa: E402
from adapters.persistence.tables import registration_requests, waitings  # noqa: E402
from application.access import Role  # noqa: E402
from entrypoints.http.auth import Authenticator  # noqa: E402
from entrypoints.settings import database_url  # noqa: E402
from sections import replace_section  # noqa: E402
from wrk_script import WRK_SCRIPT  # noqa: E402

TOKENS = Authenticator(SECRET)
WRK_TIMEOUT = "10s"
WARM_SECONDS = 2
DRAIN_GOAL = 1.0
DRAIN_WITHIN = 120.0
SETTLE_WITHIN = 60.0
TOP = 15
BODY = json.dumps({"partySize": 2})
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str  # `{store}` is the run's store
    route: str = ""  # the server's route label on /metrics; empty for the ceilings

    @property
    def queued(self) -> bool:
        return self.route.startswith("/v3/")


TRIVIAL = Scenario("trivial", "/trivial")
AUTHENTICATED = Scenario("authenticated", "/accept/{store}")
V3 = Scenario("V3 accept", "/v3/stores/{store}/waitings", "/v3/stores/{storeId}/waitings")
V2 = Scenario("V2 register", "/v2/stores/{store}/waitings", "/v2/stores/{storeId}/waitings")


@dataclass
class Load:
    profile: str
    scenario: Scenario
    connections: int
    requests: int
    seconds: float
    p50: float
    p99: float
    non_2xx: int
    socket_errors: dict[str, int]
    wrk_cpu: float
    server_cpu: float
    others_cpu: float  # every other process on the machine meanwhile
    answered: Counter[str] = field(default_factory=Counter)  # by status, counted by the server
    backlog: int | None = None
    drain: float | None = None
    numbers: str = ""
    broken: bool = False

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def served_2xx(self) -> int:
        return sum(count for status, count in self.answered.items() if status.startswith("2"))


@dataclass
class Target:
    """A served app: its profile's name, its port, its process, the database it writes (service only)."""

    profile: str
    port: int
    process: subprocess.Popen[bytes]
    database: str | None = None


@dataclass(frozen=True)
class Wrk:
    """wrk with the run's Lua script and its file of customer tokens."""

    script: Path
    tokens: Path


# -- processes and HTTP ------------------------------------------------------------------------


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
            kind = answer.headers.get("Content-Type", "")
            return answer.status, json.loads(content) if content and "json" in kind else content
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


@contextlib.contextmanager
def _served(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A server process, stopped with SIGTERM (then SIGKILL) afterwards."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=out)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_ready(port: int, process: subprocess.Popen[bytes], log: Path, method: str, path: str) -> None:
    body = {"partySize": 2} if method == "POST" else None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError):
            if _call(port, method, path, TOKENS.token(Role.CUSTOMER, "ready"), body)[0] < 300:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{log.stem} did not become ready: {log.read_text(errors='replace')[-2000:]}")


def _cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _machine_busy() -> float:
    """CPU seconds spent by the whole machine (all CPUs, not idle, not waiting on I/O), from /proc/stat."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = Path("/proc/stat").read_text().split()[1:9]
    return sum(int(ticks) for ticks in (user, nice, system, irq, softirq, steal)) / CLOCK_TICKS


def _errors_in(log: Path) -> list[str]:
    text = log.read_text(errors="replace") if log.exists() else ""
    return [line for line in text.splitlines() if "ERROR" in line or "Traceback" in line]


# -- wrk ---------------------------------------------------------------------------------------


def _tokens(folder: Path, count: int) -> Path:
    stamp = time.monotonic_ns()
    path = folder / "customers.tokens"
    with path.open("w") as out:
        for i in range(count):
            out.write(f"{TOKENS.token(Role.CUSTOMER, f'hot-{stamp}-{i}')}\n")
    return path


def _wrk(
    wrk: Wrk, port: int, connections: int, seconds: int, path: str
) -> tuple[dict[str, Any], float, float]:
    """wrk's summary, its CPU seconds (user + system) and when it ended (perf_counter)."""
    command = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--timeout", WRK_TIMEOUT]
    command += ["--latency", "-s", str(wrk.script), f"http://127.0.0.1:{port}{path}", "--"]
    command += [path, BODY, str(wrk.tokens), "2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    ended = time.perf_counter()
    process.returncode = os.waitstatus_to_exitcode(status)
    line = next((line for line in out.splitlines() if line.startswith("WRK ")), None)
    if process.returncode or line is None:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{out}")
    return dict(json.loads(line[4:])), usage.ru_utime + usage.ru_stime, ended


def _measure(
    target: Target, wrk: Wrk, scenario: Scenario, connections: int, seconds: int
) -> tuple[Load, int, float]:
    """One wrk run against a fresh store (the service) or store id 1 (the ceilings)."""
    store = _store(target.port) if scenario.route else 1
    path = scenario.path.format(store=store)
    before = _answered(target, scenario)
    cpu, busy = _cpu_seconds(target.process.pid), _machine_busy()
    answer, wrk_cpu, ended = _wrk(wrk, target.port, connections, seconds, path)
    server_cpu = _cpu_seconds(target.process.pid) - cpu
    others_cpu = _machine_busy() - busy - server_cpu - wrk_cpu
    load = Load(
        profile=target.profile,
        scenario=scenario,
        connections=connections,
        requests=answer["requests"],
        seconds=answer["duration_us"] / 1e6,
        p50=answer["p50_us"] / 1000,
        p99=answer["p99_us"] / 1000,
        non_2xx=answer["status"],
        socket_errors={key: answer[key] for key in ("connect", "read", "write", "timeout") if answer[key]},
        wrk_cpu=wrk_cpu,
        server_cpu=server_cpu,
        others_cpu=max(others_cpu, 0.0),
    )
    load.answered = before  # completed by _settle, once the server has answered what was in flight
    return load, store, ended


# -- the service's side: stores, metrics, the database ------------------------------------------


def midday_zone() -> str:
    """A zone where it is about noon: the run cannot straddle the store's midnight (tests' httpkit)."""
    offset = 12 - datetime.now(UTC).hour
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


def _store(port: int) -> int:
    body = {"name": "Hot", "waitingOpen": True, "timeZone": midday_zone()}
    status, store = _call(port, "POST", "/stores", TOKENS.token(Role.ADMIN, "bench"), body)
    assert status == 201, store
    return int(store["id"])


def _scrape(port: int) -> list[tuple[str, dict[str, str], float]]:
    status, text = _call(port, "GET", "/metrics")
    assert status == 200, text
    content = text.decode() if isinstance(text, bytes) else str(text)
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(content)
        for sample in family.samples
    ]


def _answered(target: Target, scenario: Scenario) -> Counter[str]:
    """POSTs to the scenario's route answered so far, by status (the server's own count)."""
    if not scenario.route:
        return Counter()
    counts: Counter[str] = Counter()
    for name, labels, value in _scrape(target.port):
        route = re.sub(r":\w+}", "}", labels.get("route", ""))  # `{storeId:str}` or `{storeId}`
        ours = route == scenario.route and labels.get("method") == "POST"
        if name == "waitline_http_requests_total" and ours:
            counts[labels["status"]] += int(value)
    return counts


def _depth(port: int) -> int:
    depth = next((value for name, _, value in _scrape(port) if name == "waitline_queue_depth"), None)
    if depth is None:
        raise RuntimeError("/metrics has no waitline_queue_depth: is the queue worked in this process?")
    return int(depth)


def _drain(target: Target, load: Load, ended: float) -> None:
    """The backlog when wrk ended, and how long until the queue was empty."""
    load.backlog = _depth(target.port)
    depth = load.backlog
    while depth > 0 and time.perf_counter() - ended < DRAIN_WITHIN:
        time.sleep(0.01)
        depth = _depth(target.port)
    load.drain = time.perf_counter() - ended if depth == 0 else None


def _settle(target: Target, load: Load) -> None:
    """Wait until the server has answered what was in flight when wrk stopped; keep its count."""
    before, previous, started = load.answered, None, time.perf_counter()
    while time.perf_counter() - started < SETTLE_WITHIN:
        now = _answered(target, load.scenario)
        if now == previous:
            break
        previous = now
        time.sleep(0.3)
    load.answered = Counter({status: n - before[status] for status, n in (previous or before).items()})
    load.answered = +load.answered


async def _recorded(url: str, store_id: int) -> tuple[list[tuple[Any, int]], Counter[str]]:
    """The store's (business date, number) pairs and its decided requests by outcome."""
    engine = make_engine(url, Limits(pool_size=1))
    try:
        async with engine.connect() as connection:
            numbers = [
                (row.business_date, row.number)
                for row in await connection.execute(
                    select(waitings.c.business_date, waitings.c.number).where(waitings.c.store_id == store_id)
                )
            ]
            state, reason = registration_requests.c.state, registration_requests.c.reason
            decided = (
                select(state, reason, func.count())
                .where(registration_requests.c.store_id == store_id)
                .group_by(state, reason)
            )
            outcomes = Counter(
                {reason or state: int(n) for state, reason, n in await connection.execute(decided)}
            )
    finally:
        await engine.dispose()
    return numbers, outcomes


def _check(target: Target, load: Load, store_id: int) -> None:
    """Numbers 1..n without gaps on one day, n = the 2xx the server answered (V3: all decided)."""
    assert target.database is not None
    expected = load.served_2xx
    deadline = time.perf_counter() + SETTLE_WITHIN
    while True:
        numbers, outcomes = asyncio.run(_recorded(target.database, store_id))
        if not load.scenario.queued or outcomes.total() >= expected or time.perf_counter() > deadline:
            break
        time.sleep(0.2)
    days = {day for day, _ in numbers}
    got = sorted(number for _, number in numbers)
    n = len(got)
    problems = []
    if got != list(range(1, n + 1)):
        missing = sorted(set(range(1, (got[-1] if got else 0) + 1)) - set(got))
        problems.append(f"gaps or repeats (missing {missing[:5]}, {n} rows, max {got[-1] if got else 0})")
    if len(days) > 1:
        problems.append(f"{len(days)} business days")
    if n != expected:
        problems.append(f"n = {n:,} but the server answered {expected:,} 2xx")
    if load.scenario.queued:
        rejected = {outcome: count for outcome, count in outcomes.items() if outcome != "REGISTERED"}
        if outcomes.total() != expected:
            problems.append(f"{outcomes.total():,} decided of {expected:,} accepted")
        if rejected:
            problems.append(f"rejected {rejected}")
    late = expected - (load.requests - load.non_2xx)
    load.broken = bool(problems)
    load.numbers = "; ".join(problems) if problems else f"1..{n:,} ✓ (+{late} after wrk's end)"


# -- py-spy --------------------------------------------------------------------------------------


def _frame(frame: str) -> str:
    match = re.fullmatch(r"(.*) \((.*?):(\d+)\)", frame)
    if not match:
        return frame
    name, where, line = match.groups()
    for marker in ("site-packages/", "/src/", "/lib/python3.11/", "/lib/python3.12/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{name} ({where}:{line})"


def _own_time(raw: Path) -> tuple[int, list[tuple[str, int, int]]]:
    """Samples, and the top functions by own time: (function, own samples, total samples)."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_frame(frame) for frame in stack.split(";")]
        own[frames[-1]] += int(count)
        for frame in set(frames):
            total[frame] += int(count)
    samples = own.total()
    return samples, [(frame, n, total[frame]) for frame, n in own.most_common(TOP)]


def _profiled(target: Target, wrk: Wrk, scenario: Scenario, connections: int, seconds: int) -> str:
    """The scenario once more with py-spy sampling the server; its top functions as Markdown."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    name = "v3" if scenario.queued else "v2"
    raw = BENCH / f"hot-profile-{target.profile}-{name}.txt"
    command = [spy, "record", "--pid", str(target.process.pid), "--duration", str(seconds), "--rate", "100"]
    command += ["--nonblocking", "--function", "--format", "raw", "-o", str(raw)]
    title = f"{target.profile}, {scenario.name}, {connections} connections"
    if not Path(spy).exists():
        return f"py-spy profile ({title}): py-spy is not installed (`.venv/bin/pip install py-spy`)."
    recorder = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(0.5)  # attached before the load starts
    load, _, ended = _measure(target, wrk, scenario, connections, seconds)
    out, _ = recorder.communicate(timeout=seconds + 60)
    if scenario.queued:
        _drain(target, load, ended)
    if recorder.returncode or not raw.exists():
        return f"py-spy profile ({title}): py-spy could not attach or record: {out.strip()[-500:]}"
    samples, top = _own_time(raw)
    rows = [f"| {n / samples:.1%} | {total / samples:.1%} | `{frame}` |" for frame, n, total in top]
    sqlite = any("_connection_worker_thread" in frame for frame, _, _ in top)
    return "\n".join(
        [
            f"py-spy, {title} ({load.rate:,.0f} req/s while sampled, 100 Hz, --nonblocking, idle excluded): "
            f"{samples:,} samples in {seconds} s; the {TOP} functions with the most own time (stacks in "
            f"`bench/{raw.name}`). `Runner.run`'s own time is uvloop's C code (the loop, the sockets)"
            + (
                "; `_connection_worker_thread`'s is SQLite's C code on aiosqlite's thread (statements, commits, fsync)."
                if sqlite
                else "."
            ),
            "",
            "| own | total | function (file:first line) |",
            "|---|---|---|",
            *rows,
        ]
    )


# -- the runs ------------------------------------------------------------------------------------


def _env(source: Path | None = None, **values: str) -> dict[str, str]:
    """This environment without its WAITLINE_ settings, with `values`; the service's code from `source`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("WAITLINE_")}
    env.update({f"WAITLINE_{key.upper()}": value for key, value in values.items()})
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))
    return env


def _ceilings(args: argparse.Namespace, folder: Path, wrk: Wrk) -> list[Load]:
    port, log = _free_port(), folder / "ceiling.log"
    command = [sys.executable, str(BENCH / "ceiling_app.py"), "--port", str(port)]
    loads = []
    with _served(command, _env(jwt_secret=SECRET), log) as process:
        _wait_ready(port, process, log, "POST", "/trivial")
        target = Target("ceiling", port, process)
        for scenario in (TRIVIAL, AUTHENTICATED):
            _measure(target, wrk, scenario, 64, WARM_SECONDS)
        for connections in args.connections:
            for scenario in (TRIVIAL, AUTHENTICATED):
                load, _, _ = _measure(target, wrk, scenario, connections, args.seconds)
                loads.append(load)
                _show(load)
    if problems := _errors_in(log):
        print(f"ceiling.log: {len(problems)} error lines, e.g. {problems[:3]}")
    return loads


def _registration_run(target: Target, wrk: Wrk, scenario: Scenario, connections: int, seconds: int) -> Load:
    load, store, ended = _measure(target, wrk, scenario, connections, seconds)
    if scenario.queued:
        _drain(target, load, ended)
    _settle(target, load)
    _check(target, load, store)
    return load


def _service(
    args: argparse.Namespace, profile: str, url: str | None, folder: Path, wrk: Wrk
) -> tuple[list[Load], list[str]]:
    data = folder / profile
    data.mkdir()
    values = {"data_dir": str(data), "jwt_secret": SECRET, "log_level": "WARNING"}
    if url:
        values["database_url"] = url
    if profile == "redis":
        values["redis_url"], values["redis_prefix"] = args.redis_url, f"bench:{secrets.token_hex(4)}:"
    env = _env(args.source, **values)
    if url:
        migrate = [sys.executable, "-m", "entrypoints", "migrate"]
        subprocess.run(migrate, env=env, cwd=ROOT, check=True, capture_output=True, timeout=120)
    port, log = _free_port(), folder / f"serve-{profile}.log"
    command = [sys.executable, "-m", "entrypoints", "serve", "--port", str(port)]
    loads, profiles = [], []
    with _served(command, env, log) as process:
        _wait_ready(port, process, log, "GET", "/health/ready")
        database = database_url(url) if url else f"sqlite+aiosqlite:///{data / 'waitline.db'}"
        target = Target(profile, port, process, database)
        for scenario in (V3, V2):  # warm-up, not reported
            _registration_run(target, wrk, scenario, 64, WARM_SECONDS)
        for connections in args.connections:
            for scenario in (V3, V2):
                load = _registration_run(target, wrk, scenario, connections, args.seconds)
                loads.append(load)
                _show(load)
        if args.profile:
            for scenario in (V3, V2):
                text = _profiled(target, wrk, scenario, args.connections[0], args.seconds)
                profiles.append(text)
                print(text, end="\n\n")
    if problems := _errors_in(log):
        print(f"serve-{profile}.log: {len(problems)} error lines, e.g. {problems[:3]}")
    return loads, profiles


async def _admin(dsn: str, statement: str) -> str:
    connection = await asyncpg.connect(dsn)
    try:
        return str(await connection.fetchval(statement))
    finally:
        await connection.close()


@contextlib.contextmanager
def _database(dsn: str) -> Iterator[str]:
    """A fresh database of the run's own on the server at `dsn`, dropped afterwards."""
    name = f"waitline_hot_{secrets.token_hex(4)}"
    asyncio.run(_admin(dsn, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(dsn).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run(args: argparse.Namespace) -> tuple[list[Load], list[str], dict[str, str]]:
    folder = Path(tempfile.mkdtemp(prefix="waitline-bench-hot-"))
    versions: dict[str, str] = {}
    try:
        script = folder / "hot.lua"
        script.write_text(WRK_SCRIPT)
        started = time.perf_counter()
        wrk = Wrk(script, _tokens(folder, args.tokens))
        print(f"{args.tokens:,} customer tokens in {time.perf_counter() - started:.1f} s")
        loads = _ceilings(args, folder, wrk)
        profiles: list[str] = []
        for profile in args.profiles:
            if profile in ("postgres", "redis"):
                versions["postgres"] = asyncio.run(_admin(args.dsn, "SHOW server_version")).split()[0]
                with _database(args.dsn) as url:
                    more, texts = _service(args, profile, url, folder, wrk)
            else:
                more, texts = _service(args, profile, None, folder, wrk)
            loads += more
            profiles += texts
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return loads, profiles, versions


# -- report ----------------------------------------------------------------------------------------


def _show(load: Load) -> None:
    extra = f", backlog {load.backlog:,} drained in {_seconds(load.drain)}" if load.scenario.queued else ""
    print(
        f"{load.profile} {load.scenario.name} c={load.connections}: {load.rate:,.0f}/s "
        f"p50 {load.p50:.1f} ms p99 {load.p99:.1f} ms, non-2xx {load.non_2xx:,}{extra}, "
        f"CPU wrk {load.wrk_cpu / load.seconds:.2f} server {load.server_cpu / load.seconds:.2f} "
        f"others {load.others_cpu / load.seconds:.2f} {load.numbers}"
    )


def _seconds(value: float | None) -> str:
    return "**not drained**" if value is None else f"{value:.2f} s"


def _row(load: Load, ceiling: float) -> str:
    refused = {status: n for status, n in sorted(load.answered.items()) if not status.startswith("2")}
    non_2xx = f"{load.non_2xx:,}"
    if refused:
        non_2xx += " (" + ", ".join(f"{status}: {n:,}" for status, n in refused.items()) + ")"
    errors = ", ".join(f"{key} {n:,}" for key, n in load.socket_errors.items()) or "0"
    drain = f"{load.backlog:,} → {_seconds(load.drain)}" if load.scenario.queued else "—"
    numbers = f"**{load.numbers}**" if load.broken else load.numbers or "—"
    return (
        f"| {load.profile} | {load.scenario.name} | {load.connections} | {load.rate:,.0f} | {load.rate / ceiling:.0%} "
        f"| {load.p50:.1f} ms | {load.p99:.1f} ms | {non_2xx} | {errors} | {drain} | {numbers} "
        f"| {load.wrk_cpu / load.seconds:.2f} / {load.server_cpu / load.seconds:.2f} "
        f"/ {load.others_cpu / load.seconds:.2f} |"
    )


def report(args: argparse.Namespace, loads: list[Load], profiles: list[str], versions: dict[str, str]) -> str:
    ceiling = {load.connections: load.rate for load in loads if load.scenario is AUTHENTICATED}
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout.split(" [")[0]
    stack = ", ".join(
        f"{name} {version(name)}" for name in ("uvicorn", "uvloop", "httptools", "litestar", "msgspec")
    )
    command = (
        f"bench/hot.py --connections {','.join(map(str, args.connections))} --seconds {args.seconds} "
        f"--profiles {','.join(args.profiles)}" + (" --profile" if args.profile else "")
    )
    code = args.label or (f"`{args.source}`" if args.source else _checkout())
    databases = (
        "SQLite (WAL, synchronous=FULL)"
        + (f"; PostgreSQL {versions['postgres']} (a database of its own)" if "postgres" in versions else "")
        + (
            "; the redis profile: the same with the Redis lock and statuses on Redis"
            if "redis" in args.profiles
            else ""
        )
    )
    lines = [
        "## Hot store: one store, many customers, measured from outside",
        "",
        f"`{command}`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs shared by wrk, the server and the database; {wrk} (-t 2, --timeout {WRK_TIMEOUT}), "
        f"{stack}. `waitline serve`, one process, with no Redis and no Kafka: the asyncio lock and the queue in "
        f"the database; {databases}; its code: {code}. Each request with its own customer token, body `{BODY}`; one fresh open store "
        "per run (no maxQueueSize, a time zone where it is midday); a 2 s warm-up per endpoint before the runs.",
        "",
        "| profile | scenario | conns | req/s | vs auth. ceiling | p50 | p99 | non-2xx (server's count by status) "
        "| socket errors | V3 backlog → drained | numbers | CPU cores: wrk / server / others |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *(_row(load, ceiling[load.connections]) for load in loads),
        "",
        "Ceilings: `bench/ceiling_app.py` in its own uvicorn process, same settings as `waitline serve`: "
        "trivial `POST /trivial` → 202 `{}`; authenticated `POST /accept/{id}`: the service's `Authenticator` "
        "through the same `actor` dependency, the body decoded strictly by msgspec, a uuid4 traceId, a typed 202; "
        "no storage. vs auth. ceiling: req/s against the authenticated ceiling at the same connection count in this "
        f"run. V3 backlog → drained: `waitline_queue_depth` when wrk ended, and the time from wrk's end until it "
        f"was 0 (goal: {DRAIN_GOAL:.0f} s). numbers: the store's numbers are 1..n without gaps on one business "
        "day, n = the 2xx the server counted (on /metrics; the + are requests still in flight when wrk stopped, "
        "answered after it), for V3 every accepted request decided REGISTERED. CPU cores: CPU seconds per second "
        "of the run, wrk's (rusage), the server process's (/proc/<pid>/stat, all its threads) and every other "
        "process's on the machine (/proc/stat, minus those two: PostgreSQL, and whatever else ran meanwhile); the "
        "server is one Python process, so about 1.0 means it is the bottleneck, and with 2 CPUs a sum near 2.0 "
        "means the machine is.",
    ]
    for text in profiles:
        lines += ["", text]
    return "\n".join(lines)


def _checkout() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout

    changed = " with uncommitted changes in src/" if git("status", "--porcelain", "--", "src").strip() else ""
    return f"this checkout, {git('rev-parse', '--short', 'HEAD').strip()}{changed}"


def _write(section: str) -> None:
    replace_section(RESULTS, "hot", section)
    if "<!-- hot:start -->" in README.read_text():
        replace_section(README, "hot", section.split("\n", 2)[2])
    else:
        print("README.md has no hot markers: the section was written to bench/RESULTS.md only")


def _list(kind: type) -> Any:
    return lambda text: [kind(item) for item in text.split(",") if item]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=_list(int), default=[64, 500], help="default 64,500")
    parser.add_argument("--seconds", type=int, default=10, help="each wrk run (default 10)")
    parser.add_argument(
        "--profiles", type=_list(str), default=["embedded"], help="embedded[,postgres][,redis]"
    )
    parser.add_argument("--profile", action="store_true", help="V3 and V2 once more under py-spy")
    parser.add_argument("--tokens", type=int, default=200_000, help="distinct customer tokens (200,000)")
    parser.add_argument(
        "--source",
        type=lambda text: Path(text).resolve(),
        help="the src folder `waitline serve` runs from (default: this checkout's); e.g. the src of a "
        "`git archive` of the commit to compare with",
    )
    parser.add_argument("--label", help="what the service's code is, for the report (e.g. 'before: e29df7e')")
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/0",
        help="the redis profile's (keys under a prefix of the run's own)",
    )
    parser.add_argument("--no-write", action="store_true", help="print the results only")
    args = parser.parse_args()
    if unknown := set(args.profiles) - {"embedded", "postgres", "redis"}:
        parser.error(f"unknown profiles: {sorted(unknown)}")
    if args.source and not (args.source / "entrypoints" / "__main__.py").exists():
        parser.error(f"{args.source} holds no entrypoints package")
    if shutil.which("wrk") is None:
        parser.error("wrk is not on the PATH (apt-get install -y wrk)")
    started = time.perf_counter()
    loads, profiles, versions = run(args)
    section = report(args, loads, profiles, versions)
    if not args.no_write:
        _write(section)
    print(section)
    print(f"({time.perf_counter() - started:.0f} s)")
    if any(load.broken for load in loads):
        sys.exit("an invariant was broken: see the numbers column")


if __name__ == "__main__":
    main()
