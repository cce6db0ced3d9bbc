"""The database down or slow, on a private cluster the test starts, stops, freezes and starts again.

The API answers 503 UNAVAILABLE with Retry-After within the app's timeouts (no hang, no 500),
/health/ready names the database as DOWN, and once the server is back the app recovers without a
restart, nothing lost: every request answered 202 is decided, even one accepted before the outage
and decided after it; numbers run 1..n with no gap and no duplicate; no dead letter.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from faultkit import Timed, assert_unavailable, container_on, serving, timed

from application.registration import store_lock_key
from entrypoints.container import Container
from harness.httpkit import Api, Headers, Tokens
from harness.postgres import PrivateCluster

# The app's timeouts are 1 s (connect, statement, pool) and 2 s (store lock): an outage must be
# answered well within this, however busy the machine. A hang would be the 30 s of `timed`.
ANSWERED_WITHIN = 8.0
# Back up: the next request reconnects (pool_pre_ping); the queue's worker backs off 5 s at most.
RECOVERED_WITHIN = 15.0
# Long enough for the queue's worker to fail, back off and retry several times.
OUTAGE_SECONDS = 2.0
# Slow, not down: a statement runs until the server cancels it at the statement timeout (1 s).
SLOW_ANSWERED_WITHIN = 4.5


class Run:
    """One store on the app, and every registration it accepted: customer -> waiting id."""

    def __init__(self, client: httpx.AsyncClient, tokens: Tokens, container: Container, store_id: int):
        self.client, self.tokens, self.container, self.store_id = client, tokens, container, store_id
        self.registered: dict[str, int] = {}
        self.late: dict[str, str] = {}  # customer -> traceId, answered 202 and not decided yet
        self.staff = tokens.store(store_id)

    @classmethod
    async def open(cls, client: httpx.AsyncClient, tokens: Tokens, container: Container) -> Run:
        created = await client.post(
            "/stores", json={"name": "Cafe Onion", "waitingOpen": True}, headers=tokens.admin
        )
        assert created.status_code == 201, created.text
        return cls(client, tokens, container, created.json()["id"])

    async def v2(self, customer: str) -> httpx.Response:
        return await self.client.post(
            f"/v2/stores/{self.store_id}/waitings",
            json={"partySize": 2},
            headers=self.tokens.customer(customer),
        )

    async def v3(self, customer: str) -> httpx.Response:
        return await self.client.post(
            f"/v3/stores/{self.store_id}/waitings",
            json={"partySize": 2},
            headers=self.tokens.customer(customer),
        )

    async def outcome(self, trace_id: str, headers: Headers, within: float) -> dict[str, Any]:
        return await Api(self.client, self.tokens).outcome(trace_id, headers, within)

    async def join_v2(self, customer: str) -> None:
        response = await self.v2(customer)
        assert response.status_code == 201, response.text
        self.registered[customer] = response.json()["id"]

    async def join_v3(self, customer: str) -> str:
        response = await self.v3(customer)
        assert response.status_code == 202, response.text
        trace_id: str = response.json()["traceId"]
        decided = await self.outcome(trace_id, self.tokens.customer(customer), within=5)
        assert decided["status"] == "REGISTERED", decided
        self.registered[customer] = decided["waiting"]["id"]
        return trace_id

    async def healthy_traffic(self) -> str:
        """Some join through V2 (decided at once), some through V3 (queued, then decided)."""
        for n in range(3):
            await self.join_v2(f"v2-{n}")
        for n in range(3):
            trace_id = await self.join_v3(f"v3-{n}")
        return trace_id

    async def accept_then(self, fault: Callable[[], Any]) -> None:
        """Two V3 requests answered 202 while the database is fine, then the fault, before the
        worker could decide them: it is kept off the store (its lock held here) until then."""
        lock = self.container.lock()
        async with lock.hold(store_lock_key(self.store_id), wait_time=1, lease_time=None):
            for n in range(2):
                customer = f"late-{n}"
                response = await self.v3(customer)
                assert response.status_code == 202, response.text
                self.late[customer] = response.json()["traceId"]
            result = fault()
            if asyncio.iscoroutine(result):
                await result

    async def calls_needing_the_database(self, decided_trace: str, name: str) -> dict[str, Timed]:
        """Every kind of call that needs the database, all at once (more than the pool holds),
        each timed. The two V2 calls go one after the other: both take the store's lock, and the
        second should not count the first's wait against its own."""
        customer = self.tokens.customer
        late_customer, late_trace = next(iter(self.late.items()))
        guest = {"name": "김민수", "phoneNumber": "010-1234-5678", "partySize": 2}

        async def both_v2() -> tuple[Timed, Timed]:
            v2 = await timed(self.v2(f"{name}-v2"))
            guest_v2 = await timed(
                self.client.post(f"/v2/app/stores/{self.store_id}/waitings", json=guest, headers=self.staff)
            )
            return v2, guest_v2

        (v2, guest_v2), *others = await asyncio.gather(
            both_v2(),
            timed(self.v3(f"{name}-v3")),
            timed(self.client.get(f"/stores/{self.store_id}/waitings", headers=self.staff)),
            timed(self.client.get(f"/stores/{self.store_id}")),
            timed(self.client.get(f"/waitings/{self.registered['v2-0']}", headers=customer("v2-0"))),
            timed(self.client.get(f"/v3/waiting-requests/{decided_trace}", headers=customer("v3-2"))),
            timed(self.client.get(f"/v3/waiting-requests/{late_trace}", headers=customer(late_customer))),
        )
        names = ["V3", "staff list", "public store", "waiting", "decided request", "queued request"]
        return {"V2": v2, "guest V2": guest_v2, **dict(zip(names, others, strict=True))}

    async def late_ones_decided(self) -> None:
        """The worker kept retrying across the fault: what it accepted before is decided now."""
        for customer, trace_id in self.late.items():
            decided = await self.outcome(trace_id, self.tokens.customer(customer), within=RECOVERED_WITHIN)
            assert decided["status"] == "REGISTERED", decided
            self.registered[customer] = decided["waiting"]["id"]

    async def recovered(self, since: float) -> tuple[float, float]:
        """Ready again, the late requests decided, nothing lost: seconds to ready, to decided."""
        ready_after = await wait_ready(self.client)
        await self.late_ones_decided()
        decided_after = time.perf_counter() - since
        await self.nothing_lost()
        return ready_after, decided_after

    async def nothing_lost(self) -> None:
        """New registrations work again, and the list holds exactly the accepted ones, numbered
        1..n in the order they were accepted; no dead letter, nothing left in the queue."""
        await self.join_v2("after-v2")
        await self.join_v3("after-v3")
        listed = await self.client.get(f"/stores/{self.store_id}/waitings", headers=self.staff)
        assert listed.status_code == 200, listed.text
        items = listed.json()["items"]
        assert sorted(item["number"] for item in items) == list(range(1, len(self.registered) + 1)), items
        assert {item["id"] for item in items} == set(self.registered.values()), (items, self.registered)
        number = {item["id"]: item["number"] for item in items}
        in_order = [number[self.registered[c]] for c in ("v3-2", "late-0", "late-1", "after-v2", "after-v3")]
        assert in_order == sorted(in_order), in_order
        metrics = (await self.client.get("/metrics")).text
        assert "waitline_queue_dead_letters 0.0" in metrics.splitlines(), metrics
        queue = self.container.queue()
        assert await queue.dead_letters() == []
        assert queue.depth() == 0


def slowest(answers: dict[str, Timed]) -> str:
    name = max(answers, key=lambda key: answers[key].seconds)
    return f"{answers[name].seconds:.3f} s ({name})"


async def wait_ready(client: httpx.AsyncClient) -> float:
    started = time.perf_counter()
    async with asyncio.timeout(RECOVERED_WITHIN):
        while True:
            if (await client.get("/health/ready")).status_code == 200:
                return time.perf_counter() - started
            await asyncio.sleep(0.1)


async def assert_ready_says_database_down(client: httpx.AsyncClient) -> Timed:
    health = await timed(client.get("/health/ready"))
    body = health.response.json()
    assert health.response.status_code == 503, body
    assert health.seconds < ANSWERED_WITHIN, health.seconds
    assert body["status"] == "DOWN", body
    assert body["dependencies"]["database"]["status"] == "DOWN", body
    assert body["dependencies"]["database"]["detail"], body
    assert body["dependencies"]["queue"]["status"] == "UP", body  # its workers wait, alive
    live = await client.get("/health/live")
    assert live.status_code == 200, live.text
    return health


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_postgres_stopped_mid_run_answers_503_quickly_then_recovers_with_nothing_lost(
    cluster: PrivateCluster, tokens: Tokens, tmp_path: Path, mode: str
) -> None:
    container = container_on(cluster, tmp_path / "data")
    async with serving(container) as client:
        run = await Run.open(client, tokens, container)
        decided_trace = await run.healthy_traffic()

        await run.accept_then(lambda: cluster.stop(mode))
        stopped = time.perf_counter()

        # Down, for a while, under traffic: every call needing the database is a quick 503.
        answers: dict[str, Timed] = {}
        rounds = 0
        while time.perf_counter() - stopped < OUTAGE_SECONDS or rounds < 2:
            calls = await run.calls_needing_the_database(decided_trace, f"down{rounds}")
            answers.update({f"{name} #{rounds}": answer for name, answer in calls.items()})
            # All at once too: a burst must not pile up behind the pool or the store's lock.
            burst = await asyncio.gather(
                *(timed(run.v2(f"burst{rounds}-{n}")) for n in range(8)),
                *(timed(run.v3(f"burst{rounds}-v3-{n}")) for n in range(8)),
            )
            answers.update({f"burst #{rounds}.{n}": answer for n, answer in enumerate(burst)})
            health = await assert_ready_says_database_down(client)
            rounds += 1
            await asyncio.sleep(0.25)
        for answer in answers.values():
            assert_unavailable(answer, within=ANSWERED_WITHIN)

        # Back up, on the same port and data: the app recovers without a restart.
        outage = time.perf_counter() - stopped
        cluster.start()
        ready_after, decided_after = await run.recovered(since=time.perf_counter())

    print(
        f"\n[{mode}] outage {outage:.1f} s, {len(answers)} calls: 503 in "
        f"{min(a.seconds for a in answers.values()):.3f}..{slowest(answers)}; /health/ready DOWN in "
        f"{health.seconds:.3f} s; restarted: ready in {ready_after:.2f} s, late V3 decided in {decided_after:.2f} s"
    )


async def test_slow_database_statements_cut_at_the_statement_timeout_then_recover(
    cluster: PrivateCluster, tokens: Tokens, tmp_path: Path
) -> None:
    """Slow, not down: every statement on the stores and the request log waits behind a lock
    another session holds. The server cancels it at the statement timeout (1 s): 503, never a
    hang, never a 500; the queue's worker waits it out without a dead letter."""
    container = container_on(cluster, tmp_path / "data")
    blocker = await asyncpg.connect(cluster.dsn)
    locked = blocker.transaction()
    try:
        async with serving(container) as client:
            run = await Run.open(client, tokens, container)
            decided_trace = await run.healthy_traffic()

            async def lock_tables() -> None:
                await locked.start()
                await blocker.execute("LOCK TABLE stores, registration_requests IN ACCESS EXCLUSIVE MODE")

            try:
                await run.accept_then(lock_tables)
                slow_since = time.perf_counter()
                answers: dict[str, Timed] = {}
                rounds = 0
                while time.perf_counter() - slow_since < OUTAGE_SECONDS or rounds < 1:
                    calls = await run.calls_needing_the_database(decided_trace, f"slow{rounds}")
                    answers.update({f"{name} #{rounds}": answer for name, answer in calls.items()})
                    rounds += 1
                for name, answer in answers.items():
                    if name.startswith("V3 ") and answer.response.status_code == 202:
                        # Its store read a moment ago is still good, and the queue's table is not
                        # the one locked: accepted for good, so it must be decided afterwards.
                        run.late[f"slow{name.split('#')[1]}-v3"] = answer.response.json()["traceId"]
                        continue
                    # Cut by the statement timeout (1 s; twice for V2, which may queue behind the
                    # worker's own cut statement on the store's lock), never by a hang.
                    assert_unavailable(answer, within=SLOW_ANSWERED_WITHIN)
            finally:
                await locked.rollback()
            unlocked = time.perf_counter()
            await run.late_ones_decided()
            decided_after = time.perf_counter() - unlocked
            await run.nothing_lost()
    finally:
        await blocker.close()
    print(
        f"\n[slow] {len(answers)} calls: 503 in {min(a.seconds for a in answers.values()):.3f}.."
        f"{slowest(answers)}; late V3 decided {decided_after:.2f} s after the lock went"
    )


async def test_frozen_postgres_answers_503_within_the_timeouts_then_recovers(
    cluster: PrivateCluster, tokens: Tokens, tmp_path: Path
) -> None:
    """A server that answers nothing at all (every process stopped, its connections open): the
    client's own timeouts must end each call, as no statement timeout on the server can."""
    container = container_on(cluster, tmp_path / "data")
    async with serving(container) as client:
        run = await Run.open(client, tokens, container)
        decided_trace = await run.healthy_traffic()

        await run.accept_then(cluster.pause)
        frozen = time.perf_counter()
        try:
            answers: dict[str, Timed] = {}
            rounds = 0
            while time.perf_counter() - frozen < OUTAGE_SECONDS or rounds < 1:
                calls = await run.calls_needing_the_database(decided_trace, f"frozen{rounds}")
                answers.update({f"{name} #{rounds}": answer for name, answer in calls.items()})
                health = await assert_ready_says_database_down(client)
                rounds += 1
            for name, answer in answers.items():
                # KNOWN GAP: V2 waits for the store's lock (2 s), which the queue's worker holds
                # while its own call hangs on the frozen server: about 4 s (the pool's ping runs into
                # asyncpg's command_timeout, statement timeout + 1 s; closing the dead connection
                # then waits 2 s more). So V2 answers 503 LOCK_TIMEOUT rather than UNAVAILABLE:
                # still a quick 503 with Retry-After, but it blames the store, not the database.
                codes = ("UNAVAILABLE", "LOCK_TIMEOUT") if name.startswith(("V2", "guest V2")) else ()
                assert_unavailable(answer, within=ANSWERED_WITHIN, codes=("UNAVAILABLE", *codes))
        finally:
            cluster.resume()
        ready_after, decided_after = await run.recovered(since=time.perf_counter())

    print(
        f"\n[frozen] {len(answers)} calls: 503 in {min(a.seconds for a in answers.values()):.3f}.."
        f"{slowest(answers)}; /health/ready DOWN in {health.seconds:.3f} s; thawed: ready in "
        f"{ready_after:.2f} s, late V3 decided in {decided_after:.2f} s"
    )
