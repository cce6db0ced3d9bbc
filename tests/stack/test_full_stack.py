"""The full stack, from outside: two APIs and two consumers as separate processes on real PostgreSQL,
Redis and a Kafka-protocol broker. V2 and V3 bursts spread over both APIs; then one fault at a time
(a consumer or an API killed mid-burst, Redis, the broker, PostgreSQL stopped), each followed by
the same accounting: every accepted registration is decided once, every store's numbers are 1..n
with none given twice, and what was refused left nothing behind. The counts are printed.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date

import httpx
import pytest
from sqlalchemy import text
from stackkit import PARTITIONS, SECRET, Servers

from adapters.persistence.engine import Limits, make_engine
from entrypoints.stack import Stack
from harness.httpkit import Tokens, midday_zone, sse
from harness.kafka import create_topics

ACCEPTED = (201, 202)
DECIDED_WITHIN = 60.0
tokens = Tokens(SECRET)
customers = itertools.count()


@dataclass
class Attempt:
    version: str  # "v2" | "v3"
    store_id: int
    customer: str
    status: int | None = None  # None: no answer (the API was killed, the connection refused)
    number: int | None = None  # V2's, from its answer
    trace_id: str | None = None  # V3's
    code: str | None = None  # a refusal's


@dataclass
class Ledger:
    """Every attempt and its answer; `check` compares them with what the database holds."""

    attempts: list[Attempt] = field(default_factory=list)

    def accepted(self, version: str | None = None) -> list[Attempt]:
        return [a for a in self.attempts if a.status in ACCEPTED and version in (None, a.version)]

    def refused(self) -> list[Attempt]:
        return [a for a in self.attempts if a.status is not None and a.status not in ACCEPTED]

    def unanswered(self) -> list[Attempt]:
        return [a for a in self.attempts if a.status is None]


@dataclass
class Held:
    """What the database holds for the ledger's stores, today."""

    numbers: dict[int, list[int]]  # store → its waitings' numbers
    registered: dict[tuple[int, str], list[int]]  # (store, customer) → numbers
    decisions: dict[str, str]  # traceId → REGISTERED | REJECTED


class FullStack:
    """Two APIs (requests alternate between them), tokens, the ledger, the database."""

    def __init__(self, stack: Stack, servers: Servers, client: httpx.AsyncClient) -> None:
        self.stack, self.servers, self.client = stack, servers, client
        self.ledger = Ledger()
        self._turn = itertools.count()

    def api(self, index: int | None = None) -> str:
        urls = self.stack.urls
        return urls[(next(self._turn) if index is None else index) % len(urls)]

    async def open_store(self, name: str) -> int:
        body = {"name": name, "waitingOpen": True, "timeZone": midday_zone()}
        made = await self.client.post(f"{self.api(0)}/stores", json=body, headers=tokens.admin)
        assert made.status_code == 201, made.text
        return int(made.json()["id"])

    async def join(self, version: str, store_id: int, api: int | None = None) -> Attempt:
        attempt = Attempt(version, store_id, f"customer-{next(customers)}")
        self.ledger.attempts.append(attempt)
        try:
            answer = await self.client.post(
                f"{self.api(api)}/{version}/stores/{store_id}/waitings",
                json={"partySize": 2},
                headers=tokens.customer(attempt.customer),
            )
        except httpx.TransportError:
            return attempt
        attempt.status = answer.status_code
        body = answer.json()
        if answer.status_code == 201:
            attempt.number = body["number"]
        elif answer.status_code == 202:
            attempt.trace_id = body["traceId"]
        else:
            attempt.code = body.get("code")
        return attempt

    async def burst(self, plan: list[tuple[str, int]], *, at_once: int = 32) -> list[Attempt]:
        """(version, store) pairs, `at_once` in flight, spread over both APIs."""
        gate = asyncio.Semaphore(at_once)

        async def one(version: str, store_id: int) -> Attempt:
            async with gate:
                return await self.join(version, store_id)

        return await asyncio.gather(*(one(version, store) for version, store in plan))

    async def held(self) -> Held:
        stores = sorted({a.store_id for a in self.ledger.attempts})
        engine = make_engine(self.servers.cluster.url, Limits(pool_size=1))
        try:
            async with engine.connect() as db:
                rows = (
                    await db.execute(
                        text(
                            "SELECT store_id, number, user_id, business_date FROM waitings "
                            "WHERE store_id = ANY(:stores)"
                        ),
                        {"stores": stores},
                    )
                ).all()
                decisions = (
                    await db.execute(text("SELECT trace_id, state FROM registration_requests"))
                ).all()
        finally:
            await engine.dispose()
        numbers: dict[int, list[int]] = {}
        registered: dict[tuple[int, str], list[int]] = {}
        for store_id, number, user_id, day in rows:
            assert isinstance(day, date)
            numbers.setdefault(store_id, []).append(number)
            registered.setdefault((store_id, user_id), []).append(number)
        return Held(numbers, registered, dict(decisions))

    async def settled(self, within: float = DECIDED_WITHIN) -> Held:
        """Once every accepted V3 request is decided (bounded), what the database holds."""
        deadline = time.monotonic() + within
        while True:
            held = await self.held()
            waiting = [a.trace_id for a in self.ledger.accepted("v3") if a.trace_id not in held.decisions]
            if not waiting:
                return held
            assert time.monotonic() < deadline, f"{len(waiting)} accepted requests undecided: {waiting[:5]}"
            await asyncio.sleep(0.25)

    async def account(self, title: str) -> None:
        """Nothing accepted lost, nothing doubled, numbers 1..n per store; print the counts."""
        held = await self.settled()
        ledger = self.ledger
        lost = [a for a in ledger.accepted() if not _registered(a, held)]
        doubled = {key: numbers for key, numbers in held.registered.items() if len(numbers) > 1}
        given_twice = {
            store: sorted(n for n, times in Counter(numbers).items() if times > 1)
            for store, numbers in held.numbers.items()
            if len(set(numbers)) != len(numbers)
        }
        refused_but_kept = [a for a in ledger.refused() if (a.store_id, a.customer) in held.registered]
        decided = sum(1 for a in ledger.accepted("v3") if a.trace_id in held.decisions)
        print(
            f"\n{title}: sent {len(ledger.attempts)}, accepted {len(ledger.accepted())} "
            f"(V2 {len(ledger.accepted('v2'))}, V3 {len(ledger.accepted('v3'))}), V3 decided {decided}, "
            f"refused {len(ledger.refused())} {dict(Counter(a.code for a in ledger.refused()))}, "
            f"unanswered {len(ledger.unanswered())}, lost {len(lost)}, doubled {len(doubled)}"
        )
        assert not lost, lost[:5]
        assert not doubled, doubled
        assert not given_twice, given_twice
        assert not refused_but_kept, refused_but_kept[:5]
        for store, numbers in held.numbers.items():
            assert sorted(numbers) == list(range(1, len(numbers) + 1)), (store, sorted(numbers))


def _registered(attempt: Attempt, held: Held) -> bool:
    numbers = held.registered.get((attempt.store_id, attempt.customer), [])
    if attempt.version == "v2":
        return numbers == [attempt.number]
    return held.decisions.get(attempt.trace_id or "") == "REGISTERED" and len(numbers) == 1


@pytest.fixture
async def full(stack: Stack, servers: Servers) -> AsyncIterator[FullStack]:
    for member in stack.members:  # a test that failed midway may have left one down
        if not member.running():
            stack.restart(member)
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=100)) as client:
        yield FullStack(stack, servers, client)


async def test_bursts_over_two_apis_and_two_consumers_are_numbered_once_each_in_order_and_seen_live(
    full: FullStack,
) -> None:
    hot = await full.open_store("Hot")
    others = [await full.open_store(f"Store {n}") for n in range(5)]
    plan = [(("v2", "v3")[n % 2], hot) for n in range(120)]
    plan += [(("v2", "v3")[n % 2], store) for store in others for n in range(20)]
    # Watched on one API while the other registers half of them: live events cross processes.
    async with sse(full.client, f"{full.api(1)}/stores/{hot}/events", tokens.store(hot)) as events:
        await events.expect("snapshot")
        attempts = await full.burst(plan)
        assert [a.status for a in attempts if a.status not in ACCEPTED] == []
        seen = []
        while len(seen) < 120:
            event = await events.next(within=DECIDED_WITHIN)
            assert event is not None, "the store's stream ended"
            if event.event == "registered":
                seen.append(event.data["number"])
    assert sorted(seen) == list(range(1, 121))
    await full.account("bursts")

    # One client at a time, alternating APIs and versions: first come, first numbered, even
    # when a V2 follows a V3 that is still queued.
    store = await full.open_store("Sequential")
    for n in range(10):
        await full.join(("v3", "v2")[n % 2], store, api=n)
    held = await full.settled()
    order = [a.customer for a in full.ledger.attempts if a.store_id == store]
    assert [held.registered[(store, customer)] for customer in order] == [[n] for n in range(1, 11)]
    # Every traceId resolves through either API.
    for n, attempt in enumerate(full.ledger.accepted("v3")[:20]):
        status = await full.client.get(
            f"{full.api(n)}/v3/waiting-requests/{attempt.trace_id}", headers=tokens.customer(attempt.customer)
        )
        assert status.json()["status"] == "REGISTERED", status.text


async def test_a_consumer_killed_mid_burst_loses_and_doubles_nothing(full: FullStack) -> None:
    store = await full.open_store("Consumer killed")
    burst = asyncio.create_task(full.burst([("v3", store)] * 200, at_once=16))
    await _until(lambda: len(full.ledger.accepted()) >= 60)
    full.stack.consumers[0].kill()
    await burst
    full.stack.restart(full.stack.consumers[0])
    await full.account("consumer killed")
    assert len(full.ledger.accepted()) == 200


async def test_an_api_killed_mid_burst_has_every_202_it_sent_decided(full: FullStack) -> None:
    store = await full.open_store("API killed")
    burst = asyncio.create_task(full.burst([(("v3", "v2")[n % 2], store) for n in range(200)], at_once=16))
    await _until(lambda: len(full.ledger.accepted()) >= 60)
    full.stack.apis[1].kill()
    await burst
    full.stack.restart(full.stack.apis[1])
    await full.account("API killed")
    assert full.ledger.unanswered(), "the kill came after the burst: nothing was in flight"


async def test_redis_stopped_v2_is_503_at_once_v3_still_accepted_and_decided_once_it_is_back(
    full: FullStack,
) -> None:
    store = await full.open_store("Redis stopped")
    await full.burst([("v2", store), ("v3", store)])
    full.servers.redis.stop()
    try:
        started = time.perf_counter()
        v2 = await full.join("v2", store)
        assert (v2.status, v2.code) == (503, "UNAVAILABLE"), v2
        assert time.perf_counter() - started < 3
        v3 = await full.burst([("v3", store)] * 5)
        assert [a.status for a in v3] == [202] * 5, v3
    finally:
        full.servers.redis.start()
    await _eventually(lambda: full.join("v2", store))
    await full.account("Redis stopped")


async def test_the_broker_stopped_v3_is_503_within_2_s_v2_goes_on_and_v3_flows_once_it_is_back(
    full: FullStack,
) -> None:
    store = await full.open_store("Broker stopped")
    await full.burst([("v3", store)] * 5)
    await full.settled()  # this broker keeps nothing: a restart would lose what is not decided
    full.servers.broker.stop()
    try:
        started = time.perf_counter()
        v3 = await full.join("v3", store)
        assert (v3.status, v3.code) == (503, "UNAVAILABLE"), v3
        assert time.perf_counter() - started < 2.5
        v2 = await full.join("v2", store)
        assert v2.status == 201, v2
    finally:
        full.servers.broker.start()
        settings = full.stack.topology.env
        topics = [settings.get("WAITLINE_KAFKA_TOPIC", "waiting-registration-request")]
        topics.append(settings.get("WAITLINE_KAFKA_DEAD_LETTER_TOPIC", "waiting-registration-dlq"))
        await create_topics(full.servers.broker.bootstrap, topics, PARTITIONS)
    await _eventually(lambda: full.join("v3", store))
    await full.account("broker stopped")


async def test_postgresql_stopped_is_503_and_the_stack_recovers(full: FullStack) -> None:
    store = await full.open_store("Database stopped")
    await full.burst([("v2", store), ("v3", store)])
    await full.settled()
    full.servers.cluster.stop()
    try:
        for version in ("v2", "v3"):
            started = time.perf_counter()
            attempt = await full.join(version, store)
            assert attempt.status == 503 or attempt.status in ACCEPTED, attempt
            assert time.perf_counter() - started < 5
        ready = await full.client.get(f"{full.api(0)}/health/ready")
        assert ready.status_code == 503 and ready.json()["dependencies"]["database"]["status"] == "DOWN"
    finally:
        full.servers.cluster.start()
    await _eventually(lambda: full.join("v2", store))
    await _eventually(lambda: full.join("v3", store))
    await full.account("PostgreSQL stopped")


async def _until(condition: Callable[[], bool], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.02)


async def _eventually(join: Callable[[], Awaitable[Attempt]], within: float = 30.0) -> None:
    """Retried, as a client told Retry-After would, until one is accepted (bounded)."""
    deadline = time.monotonic() + within
    while (await join()).status not in ACCEPTED:
        assert time.monotonic() < deadline, "never accepted again"
        await asyncio.sleep(0.5)
