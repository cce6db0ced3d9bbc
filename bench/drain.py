"""Drain benchmark: V3 requests for one hot store decided by the worker, on PostgreSQL.

Creates its own database on the PostgreSQL at --dsn (migrated to head, dropped at the end), then
measures, in the same run, with the table reset (TRUNCATE ... RESTART IDENTITY) before every round:
  raw-copy      N rows shaped like `waitings` rows, asyncpg COPY into the empty table, committed
  raw-insert    the same N rows in one INSERT ... SELECT FROM unnest(arrays), committed
  raw-floor     the writes a drain cannot avoid, without Python: that COPY, N outcomes into
                registration_requests, N queued rows deleted, in one transaction
  v3-drain/B    N RegistrationRequests for one open store, already queued (rows in
                queued_registrations, encoded as the queue encodes them), decided by the container's
                SqlRegistrationQueue workers and the real ProcessRegistrations at batch size B (a
                transaction per batch, pipelined: see application/pipeline.py): time
                from starting the workers until the queue is empty. Checked afterwards: numbers
                1..N in queue order, each traceId once, every request recorded REGISTERED.
  --grow K      K such drains in a row for one store and business day, nothing reset in between:
                whether a drain slows as the day's list grows (it did, 9.3k/s to 5.5k/s at 40,000
                entries, until the service kept the planner's statistics fresh).
Ratios are throughput against raw-copy. One more, instrumented drain (not in the table) times every
round trip at asyncpg's protocol, to split the worker's time between PostgreSQL and Python; with
--profile it also samples it with pyinstrument (`.venv/bin/pip install pyinstrument`, not a
requirement). Results go to bench/RESULTS.md between the drain markers.

    .venv/bin/python bench/drain.py [--n 10000] [--rounds 5] [--batch-sizes 1000,200] [--grow 5] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.util
import logging
import math
import os
import platform
import re
import secrets
import statistics
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
sys.path.insert(0, str(ROOT / "src"))

from adapters.persistence import schema  # noqa: E402
from adapters.persistence.engine import Limits, make_engine  # noqa: E402
from adapters.persistence.status_tokens import selector  # noqa: E402
from adapters.persistence.tables import waitings  # noqa: E402
from adapters.queue.codec import encode  # noqa: E402
from application.requests import RegistrationRequest  # noqa: E402
from domain.customer import Channel  # noqa: E402
from domain.store import Store  # noqa: E402
from entrypoints.container import Container, start, stop  # noqa: E402
from entrypoints.long_lived import keep_for_life  # noqa: E402
from entrypoints.settings import Settings, database_url  # noqa: E402
from sections import replace_section  # noqa: E402

TABLES = "queued_registrations, registration_requests, waitings, waiting_sequences, stores"
COLUMNS = [column.name for column in waitings.columns if column.name != "id"]
PG_TYPES = [waitings.c[name].type.compile(dialect=postgresql.dialect()) for name in COLUMNS]
UNNEST = (
    f"INSERT INTO waitings ({', '.join(COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"${i}::{kind}[]" for i, kind in enumerate(PG_TYPES, start=1))
    + ")"
)
GOAL_RATE, GOAL_SHARE = 5_000, 0.30
# The most a worker's batch holds unless WAITLINE_BATCH_SIZE says otherwise.
SERVICE_BATCH: int = Settings.model_fields["batch_size"].default


@contextlib.asynccontextmanager
async def _database(dsn: str) -> AsyncIterator[str]:
    """A fresh database on the server, migrated to head; dropped afterwards."""
    name = f"waitline_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(dsn).set(database=name).render_as_string(hide_password=False)
    try:
        engine = make_engine(database_url(url), Limits(pool_size=1))
        try:
            await schema.upgrade(engine)
        finally:
            await engine.dispose()
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _reset(db: asyncpg.Connection) -> Store:
    await db.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    store = Store(id=0, name="Bench", waiting_open=True)
    store.id = await db.fetchval(
        "INSERT INTO stores (name, time_zone, waiting_open, max_party_size) VALUES ($1, $2, $3, $4) "
        "RETURNING id",
        store.name,
        store.time_zone,
        store.waiting_open,
        store.max_party_size,
    )
    return store


def _waiting_records(store: Store, n: int) -> list[tuple[Any, ...]]:
    """What the worker would insert for n USER registrations, column for column."""
    now = datetime.now(UTC)
    records = []
    for number in range(1, n + 1):
        token = secrets.token_urlsafe(24)
        row = {
            "store_id": store.id,
            "business_date": store.business_date(now),
            "number": number,
            "place": number,
            "postpones": 0,
            "channel": str(Channel.USER),
            "customer_key": f"user:u{number}",
            "user_id": f"u{number}",
            "party_size": 2,
            "status": "WAITING",
            "trace_id": str(uuid.uuid4()),
            "status_token": token,
            "status_selector": selector(token),
            "created_at": now,
        }
        records.append(tuple(row.get(column) for column in COLUMNS))
    return records


async def _raw_copy(db: asyncpg.Connection, n: int) -> float:
    records = _waiting_records(await _reset(db), n)
    started = time.perf_counter()
    async with db.transaction():
        await db.copy_records_to_table("waitings", records=records, columns=COLUMNS)
    return time.perf_counter() - started


async def _raw_insert(db: asyncpg.Connection, n: int) -> float:
    records = _waiting_records(await _reset(db), n)
    arrays = [list(column) for column in zip(*records, strict=True)]
    started = time.perf_counter()
    async with db.transaction():
        await db.execute(UNNEST, *arrays)
    return time.perf_counter() - started


async def _raw_floor(db: asyncpg.Connection, n: int) -> float:
    """The database's part of a drain with no Python in it: the three writes each decision makes."""
    store = await _reset(db)
    records = _waiting_records(store, n)
    await _enqueue(db, _requests(store, n), 4)
    seqs = [row["seq"] for row in await db.fetch("SELECT seq FROM queued_registrations ORDER BY seq")]
    started = time.perf_counter()
    async with db.transaction():
        await db.copy_records_to_table("waitings", records=records, columns=COLUMNS)
        await db.execute(
            "INSERT INTO registration_requests (trace_id, store_id, state, user_id, waiting_id) "
            "SELECT trace_id, store_id, 'REGISTERED', user_id, id FROM waitings"
        )
        await db.execute("DELETE FROM queued_registrations WHERE seq = ANY($1::bigint[])", seqs)
    return time.perf_counter() - started


def _requests(store: Store, n: int, first: int = 1) -> list[RegistrationRequest]:
    now = datetime.now(UTC)
    return [
        RegistrationRequest(
            trace_id=str(uuid.uuid4()),
            store_id=store.id,
            channel=Channel.USER,
            party_size=2,
            requested_at=now,
            user_id=f"u{i}",
        )
        for i in range(first, first + n)
    ]


async def _enqueue(db: asyncpg.Connection, requests: list[RegistrationRequest], partitions: int) -> None:
    """As `publish` would leave them, in one COPY: the clock starts once they are all queued."""
    records = [(r.store_id % partitions, r.store_id, encode(r)) for r in requests]
    await db.copy_records_to_table(
        "queued_registrations", records=records, columns=["partition", "store_id", "payload"]
    )


async def _verify(db: asyncpg.Connection, requests: list[RegistrationRequest]) -> None:
    rows = await db.fetch("SELECT number, trace_id FROM waitings ORDER BY number")
    assert [row["number"] for row in rows] == list(range(1, len(requests) + 1)), "numbers are not 1..N"
    assert [row["trace_id"] for row in rows] == [r.trace_id for r in requests], "not in queue order"
    recorded = await db.fetchval(
        "SELECT count(DISTINCT trace_id) FROM registration_requests WHERE state = 'REGISTERED'"
    )
    assert recorded == len(requests), f"{recorded} requests recorded REGISTERED"
    assert await db.fetchval("SELECT count(*) FROM queued_registrations") == 0, "left in the queue"


@contextlib.asynccontextmanager
async def _service(
    url: str, batch_size: int, partitions: int = 4, on_connect: Callable[[Any, Any], None] | None = None
) -> AsyncIterator[Container]:
    """The composition root on the bench database, as `waitline serve` would build it."""
    container = Container()
    settings = Settings(database_url=url, batch_size=batch_size, queue_partitions=partitions)
    container.settings.override(settings)
    if on_connect is not None:
        event.listen(container.engine().sync_engine, "connect", on_connect)
    await start(container)
    keep_for_life()  # as `waitline serve` and `waitline consume` do once started
    try:
        yield container
    finally:
        await stop(container)
        gc.unfreeze()  # the next round's service starts afresh


async def _drain(
    container: Container,
    db: asyncpg.Connection,
    n: int,
    timed: contextlib.AbstractContextManager[Any] | None = None,
) -> float:
    """Queue n requests for one fresh store, start the workers, time until the queue is empty.

    `timed` (a Wire, a profiler) is entered just for the timed part.
    """
    store = await _reset(db)
    requests = _requests(store, n)
    await _enqueue(db, requests, container.settings().queue_partitions)
    with timed or contextlib.nullcontext():
        elapsed = await _worked(container)
    await _verify(db, requests)
    return elapsed


async def _worked(container: Container) -> float:
    """Start the workers on what is queued; the time until the queue is empty."""
    queue, process = container.queue(), container.process()
    started = time.perf_counter()
    await queue.start(process)
    while queue.depth() > 0:
        if not queue.running() or time.perf_counter() - started > 600:
            raise RuntimeError(f"the queue stopped draining ({queue.depth()} left)")
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - started
    await queue.stop()
    return elapsed


async def _growing(url: str, db: asyncpg.Connection, n: int, batch_size: int, times: int) -> list[float]:
    """`times` drains of n in a row for one store and business day, nothing reset in between: what
    each costs as the day's list grows (the tables' statistics lag behind a rush)."""
    async with _service(url, batch_size) as container:
        await _drain(container, db, 2 * batch_size)  # warm-up
        store = await _reset(db)
        seconds = []
        for round_ in range(times):
            await _enqueue(
                db, _requests(store, n, first=round_ * n + 1), container.settings().queue_partitions
            )
            seconds.append(await _worked(container))
    numbers = [
        row["number"]
        for row in await db.fetch("SELECT number FROM waitings WHERE store_id = $1 ORDER BY number", store.id)
    ]
    assert numbers == list(range(1, times * n + 1)), "numbers are not 1..N"
    return seconds


class Wire:
    """Every round trip to PostgreSQL, timed at asyncpg's protocol, by statement kind and task."""

    CALLS = frozenset({"query", "prepare", "bind", "bind_execute", "bind_execute_many", "copy_in"})
    POLLING = frozenset({"pool pre-ping `;`", "BEGIN", "ROLLBACK", "SELECT queued_registrations"})

    def __init__(self) -> None:
        self.calls: dict[int, Counter[str]] = defaultdict(Counter)
        self.seconds: dict[int, Counter[str]] = defaultdict(Counter)
        self.recording = False

    def on_connect(self, dbapi_connection: Any, _record: Any) -> None:
        raw = dbapi_connection._connection  # the asyncpg connection behind SQLAlchemy's adapter
        raw._protocol = _TimedProtocol(raw._protocol, self)

    def __enter__(self) -> Wire:
        self.recording = True
        return self

    def __exit__(self, *_exc: object) -> None:
        self.recording = False

    def timed(self, name: str, call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def timed_call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await call(*args, **kwargs)
            finally:
                if self.recording:
                    label, task = _label(name, args, kwargs), id(asyncio.current_task())
                    self.calls[task][label] += 1
                    self.seconds[task][label] += time.perf_counter() - started

        return timed_call

    def drain(self) -> tuple[Counter[str], Counter[str]]:
        """The hot store's round trips: its worker's and its handler's, without the idle partitions'
        workers, which only poll (a task that wrote nothing is one of them)."""
        calls: Counter[str] = Counter()
        seconds: Counter[str] = Counter()
        for task, counted in self.calls.items():
            if not set(counted) <= self.POLLING:
                calls.update(counted)
                seconds.update(self.seconds[task])
        return calls, seconds


class _TimedProtocol:
    def __init__(self, protocol: Any, wire: Wire) -> None:
        self._protocol, self._wire = protocol, wire

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._protocol, name)
        return self._wire.timed(name, value) if name in Wire.CALLS else value


def _label(call: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    if call == "query":
        sql = args[0] if args else kwargs["query"]
    elif call == "prepare":
        sql = args[1] if len(args) > 1 else kwargs["query"]
    elif call == "copy_in":
        sql = args[0] if args else kwargs["copy_stmt"]
    else:
        sql = getattr(args[0] if args else kwargs.get("state"), "query", "?")
    sql = " ".join(sql.split())
    if sql == ";":
        return "pool pre-ping `;`"
    verb = sql.split(" ", 1)[0].upper()
    if verb in ("INSERT", "DELETE"):
        target = re.search(r"\b(?:INTO|FROM) (\w+)", sql)
    elif verb == "COPY":
        target = re.match(r"COPY (?:\S+\.)?\"?(\w+)", sql)
    elif verb == "UPDATE":
        target = re.search(r"^UPDATE (\w+)", sql)
    else:
        found = re.findall(r"\bFROM (\w+)", sql)
        target = re.match(r"(\w+)", found[-1]) if found else None
    name = f"{verb} {target.group(1)}" if target else verb.split(";")[0]
    if call == "bind_execute_many":
        name += " (executemany)"
    return f"prepare {name}" if call == "prepare" else name


CATEGORIES = [  # (fragment of "path:function", category): the innermost matching frame names the sample
    ("/selectors.py:", "PostgreSQL: event loop idle, awaiting answers"),
    ("socket.send", "PostgreSQL: socket send (loopback; the backend runs on the same 2 CPUs)"),
    ("/asyncpg/", "asyncpg driver"),
    ("/sqlalchemy/dialects/", "SQLAlchemy asyncpg adapter"),
    ("/sqlalchemy/sql/", "SQLAlchemy compile / render"),
    ("/sqlalchemy/engine/", "SQLAlchemy execute / results"),
    ("/sqlalchemy/pool/", "SQLAlchemy pool"),
    ("/sqlalchemy/", "SQLAlchemy other"),
    ("/src/domain/", "domain (WaitingList.register, ...)"),
    ("/adapters/queue/codec.py", "queue codec (decode)"),
    ("/adapters/queue/", "queue adapter"),
    ("/adapters/persistence/", "persistence adapter (rows)"),
    ("/adapters/notify/", "announcements (views, notifier, statuses)"),
    ("/adapters/status/", "announcements (views, notifier, statuses)"),
    ("/application/views.py", "announcements (views, notifier, statuses)"),
    ("/application/announcements.py", "announcements (views, notifier, statuses)"),
    ("/application/", "application (registration, requests)"),
    ("/asyncio/", "asyncio"),
]


def _categories(root: Any) -> Counter[str]:
    totals: Counter[str] = Counter()

    def walk(frame: Any, category: str) -> None:
        where = f"{frame.file_path or ''}:{frame.function}"
        category = next((name for fragment, name in CATEGORIES if fragment in where), category)
        totals[category] += frame.time - sum(child.time for child in frame.children)
        for child in frame.children:
            walk(child, category)

    walk(root, "other Python")
    return totals


async def _instrumented(url: str, db: asyncpg.Connection, n: int, batch_size: int, profile: bool) -> str:
    wire = Wire()
    async with _service(url, batch_size, on_connect=wire.on_connect) as container:
        await _drain(container, db, 2 * batch_size)  # warm-up
        elapsed = await _drain(container, db, n, wire)
        if not profile:
            return _profile_report(n, batch_size, elapsed, wire, None)
        from pyinstrument import Profiler  # optional: only for --profile

        profiler = Profiler(interval=0.0005, async_mode="disabled")
        await _drain(container, db, n, profiler)
    print(profiler.output_text(color=False, show_all=False, timeline=False))
    return _profile_report(n, batch_size, elapsed, wire, profiler)


def _profile_report(n: int, batch_size: int, elapsed: float, wire: Wire, profiler: Any) -> str:
    calls, seconds = wire.drain()
    batches = math.ceil(n / batch_size)
    waited = sum(seconds.values())
    per_batch = elapsed / batches * 1000
    rare = [label for label in calls if calls[label] < 0.1 * batches]  # new connections' prepares, types
    other = "other: prepares and type lookups on new connections"
    for label in rare:
        calls[other] += calls.pop(label)
        seconds[other] += seconds.pop(label)
    rows = [
        f"| {label} | {calls[label] / batches:.2f} | {seconds[label] / batches * 1000:.2f} ms |"
        for label in sorted(calls, key=lambda label: (label == other, -seconds[label]))
    ]
    lines = [
        "Instrumented drain (not in the table; every round trip timed at asyncpg's protocol, those of "
        f"the idle partitions' polling left out): {n} requests at batch {batch_size}, {batches} batches, "
        f"{elapsed * 1000:.0f} ms ({n / elapsed:,.0f}/s). Per batch: {per_batch:.1f} ms of the drain, and "
        f"{waited / batches * 1000:.1f} ms of round trips to PostgreSQL ({sum(calls.values()) / batches:.1f} "
        "of them). The sum can exceed the drain: the worker reads the next batch and decides it while the "
        "one before is written, and deletes the last one meanwhile, so round trips overlap each other "
        "and the Python in the one event loop.",
        "",
        "| round trip | per batch | time per batch |",
        "|---|---|---|",
        *rows,
        "",
    ]
    if profiler is not None:
        root = profiler.last_session.root_frame(trim_stem=False)
        totals = _categories(root)
        sampled = sum(totals.values())
        lines += [
            "pyinstrument (--profile; another drain, sampled every 0.5 ms, which slows it down): where the "
            "process's time goes, each sample named by its innermost matching frame:",
            "",
            "| where | share | per batch |",
            "|---|---|---|",
            *(
                f"| {name} | {value / sampled:.0%} | {value / batches * 1000:.1f} ms |"
                for name, value in totals.most_common()
                if value / sampled >= 0.005
            ),
            "",
        ]
    return "\n".join(lines)


async def _fresh_drain(url: str, db: asyncpg.Connection, n: int, batch_size: int) -> float:
    """A freshly started service, warmed up by two batches, then timed: rounds stay independent
    (PostgreSQL's per-connection plan caches would otherwise carry over from round to round)."""
    async with _service(url, batch_size) as container:
        await _drain(container, db, 2 * batch_size)
        return await _drain(container, db, n)


async def run(args: argparse.Namespace) -> tuple[dict[str, list[float]], str, str]:
    raws = {"raw-copy": _raw_copy, "raw-insert": _raw_insert, "raw-floor": _raw_floor}
    timings: dict[str, list[float]] = {name: [] for name in raws}
    timings.update({f"v3-drain/{size}": [] for size in args.batch_sizes})
    async with _database(args.dsn) as url:
        db = await asyncpg.connect(url)
        try:
            server = str(await db.fetchval("SHOW server_version")).split()[0]
            for scenario in raws.values():  # warm-up
                await scenario(db, args.n)
            for round_ in range(args.rounds):
                for name, scenario in raws.items():
                    timings[name].append(await scenario(db, args.n))
                for size in args.batch_sizes:
                    timings[f"v3-drain/{size}"].append(await _fresh_drain(url, db, args.n, size))
                done = ", ".join(f"{name} {seconds[-1] * 1000:.0f} ms" for name, seconds in timings.items())
                print(f"round {round_ + 1}: {done}")
            if args.grow:
                growing = await _growing(url, db, args.n, args.batch_sizes[0], args.grow)
                timings["growing"] = growing
                print("growing: " + ", ".join(f"{seconds * 1000:.0f} ms" for seconds in growing))
            profile = await _instrumented(url, db, args.n, args.batch_sizes[0], args.profile)
        finally:
            await db.close()
    return timings, server, profile


def report(args: argparse.Namespace, timings: dict[str, list[float]], server: str, profile: str) -> str:
    n = args.n
    base = n / statistics.median(timings["raw-copy"])
    rows, rates = [], {}
    growing = timings.pop("growing", [])
    for name, seconds in timings.items():
        median = statistics.median(seconds)
        rates[name] = n / median
        rows.append(
            f"| {name} | {n} | {median * 1000:.0f} ms | {n / median:,.0f}/s | {rates[name] / base:.1%} |"
        )
    default = f"v3-drain/{args.batch_sizes[0]}"
    rate, share = rates[default], rates[default] / base
    met = rate >= GOAL_RATE and share >= GOAL_SHARE
    sizes = ",".join(str(size) for size in args.batch_sizes)
    return "\n".join(
        [
            "## Drain: V3 requests for one hot store, decided on PostgreSQL",
            "",
            f"`bench/drain.py --n {n} --rounds {args.rounds} --batch-sizes {sizes}`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
            f"Python {platform.python_version()}, {os.cpu_count()} CPUs, PostgreSQL {server} on the same "
            "machine (loopback, fsync on), asyncpg; the queue in PostgreSQL (4 partitions), asyncio lock, "
            "one process. Medians of the rounds; each round starts from empty tables, each drain from a freshly started service warmed up by two batches.",
            "",
            "| scenario | rows | median time | rows/s | vs raw copy |",
            "|---|---|---|---|---|",
            *rows,
            "",
            "raw-copy: rows like the worker's, COPY into the empty `waitings` in one transaction; raw-insert: the "
            "same rows in one `INSERT ... SELECT FROM unnest(...)`; raw-floor: what a drain must write, with no "
            "Python in it: the COPY, the requests' outcomes (`INSERT ... SELECT` from it) and the queued rows "
            "deleted, in one transaction. v3-drain/B: that many requests already queued, decided by the "
            "queue's workers with the real `ProcessRegistrations` in batches of B (a transaction each; a "
            "worker takes up to 4 batches at a time and decides each while the one before is written), "
            "each checked afterwards "
            "(numbers 1..N in queue order, each traceId once, all recorded REGISTERED, queue empty).",
            "",
            f"Goal: ≥ {GOAL_RATE:,} registrations/s and ≥ {GOAL_SHARE:.0%} of the raw batch rate. "
            f"{default}{' (the default batch)' if default.endswith(f'/{SERVICE_BATCH}') else ''}: {rate:,.0f}/s, {share:.1%} of raw-copy: "
            f"**{'met' if met else 'not met'}** (rate {'met' if rate >= GOAL_RATE else 'not met'}, "
            f"share {'met' if share >= GOAL_SHARE else 'not met'}).",
            "",
            *_growth(args, growing),
            profile,
        ]
    )


def _growth(args: argparse.Namespace, seconds: list[float]) -> list[str]:
    if not seconds:
        return []
    first = args.n / seconds[0]
    rows = [
        f"| {round_ * args.n:,} | {args.n / took:,.0f}/s | {args.n / took / first:.0%} |"
        for round_, took in enumerate(seconds)
    ]
    return [
        f"As the day grows (`--grow {args.grow}`): {args.grow} drains of {args.n:,} in a row for one store and "
        f"business day at batch {args.batch_sizes[0]}, nothing reset in between, one service throughout; "
        "checked afterwards: numbers 1..N.",
        "",
        "| entries before | rows/s | vs the first |",
        "|---|---|---|",
        *rows,
        "",
    ]


def _write(section: str) -> None:
    replace_section(RESULTS, "drain", section)
    # The README shows the table and the goal; the round-trip breakdown stays in RESULTS.md.
    summary = section.split("\n\nInstrumented drain", 1)[0].split("\n", 2)[2]
    replace_section(ROOT / "README.md", "drain", summary)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--batch-sizes",
        type=lambda text: [int(size) for size in text.split(",")],
        default=[SERVICE_BATCH, 200],
        help=f"comma-separated; the first is the one the goal is checked on (default: {SERVICE_BATCH},200, "
        "the service's default WAITLINE_BATCH_SIZE first)",
    )
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--profile", action="store_true", help="also sample the drain with pyinstrument")
    parser.add_argument(
        "--grow", type=int, default=5, help="drains in a row on one growing day, 0 for none (default 5)"
    )
    args = parser.parse_args()
    if args.profile and importlib.util.find_spec("pyinstrument") is None:
        parser.error("--profile needs pyinstrument: .venv/bin/pip install pyinstrument")
    logging.basicConfig(level=logging.WARNING)
    timings, server, profile = asyncio.run(run(args))
    section = report(args, timings, server, profile)
    _write(section)
    print(section)


if __name__ == "__main__":
    main()
