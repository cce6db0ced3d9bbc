"""The webhook worker (application/webhooks.py): signed as API.md says, sent at least once,
retried with exponential back-off, given up on after the last attempt, dropped when the store
no longer sends there."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta

import pytest

from adapters.persistence.memory import MemoryDatabase, MemoryUnitOfWork
from application.ports import NewWebhook, UnitOfWork, WebhookNotDelivered
from application.webhooks import SIGNATURE_HEADER, DeliverWebhooks, Outcome, RetrySchedule, signature
from domain.store import Store
from harness.webhooks import until, verify
from unit.helpers import SettableClock

HOOK = "https://hooks.example.com/waitline"
SECRET = "whsec-of-the-store"
BODY = '{"type":"getting_close","storeId":1,"waitingId":7,"number":7,"rank":3}'


@dataclass
class Endpoint:
    """A store's endpoint as the sender port sees it: what it was sent, and how it failed."""

    failures: list[Exception] = field(default_factory=list)
    sent: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)
    held: asyncio.Event | None = None

    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> None:
        self.sent.append((url, body, dict(headers)))
        if self.held is not None:
            await self.held.wait()
        if self.failures:
            raise self.failures.pop(0)


@dataclass
class Worker:
    db: MemoryDatabase = field(default_factory=MemoryDatabase)
    clock: SettableClock = field(default_factory=SettableClock)
    endpoint: Endpoint = field(default_factory=Endpoint)
    outcomes: list[Outcome] = field(default_factory=list)
    schedule: RetrySchedule = field(default_factory=RetrySchedule)
    store: Store = field(
        default_factory=lambda: Store(id=0, name="Gamja", webhook_url=HOOK, webhook_secret=SECRET)
    )

    def uow(self) -> UnitOfWork:
        return MemoryUnitOfWork(self.db)

    @property
    def deliver(self) -> DeliverWebhooks:
        return DeliverWebhooks(
            self.uow, self.endpoint, self.clock, self.schedule, poll_seconds=60, tell=self.outcomes.append
        )

    async def queue(self, count: int = 1) -> None:
        async with self.uow() as uow:
            if not self.store.id:
                await uow.stores.add(self.store)
            await uow.webhooks.add([NewWebhook(self.store.id, HOOK, BODY)] * count, self.clock.now())
            await uow.commit()

    async def change_store(self, **settings: object) -> None:
        async with self.uow() as uow:
            await uow.stores.save(replace(self.store, **settings))  # type: ignore[arg-type]
            await uow.commit()

    def kept(self) -> list[tuple[str, int, str | None]]:
        rows = self.db.alerts.deliveries.values()
        return [(row.status, row.delivery.attempts, row.last_error) for row in rows]


def retried(reason: str = "answered 500") -> WebhookNotDelivered:
    return WebhookNotDelivered(reason, retry=True)


async def test_a_due_webhook_is_sent_signed_and_forgotten() -> None:
    worker = Worker()
    await worker.queue()

    assert await worker.deliver.deliver_due() == 1

    [(url, body, headers)] = worker.endpoint.sent
    assert (url, body, headers["Content-Type"]) == (HOOK, BODY.encode(), "application/json")
    assert verify(headers[SIGNATURE_HEADER], body, SECRET) == int(worker.clock.now().timestamp())
    assert worker.outcomes == [Outcome.DELIVERED]
    assert worker.kept() == []
    assert await worker.deliver.deliver_due() == 0


def test_the_signature_is_hmac_sha256_of_the_time_a_dot_and_the_body() -> None:
    expected = hmac.new(b"s3cret", b"1764213600." + BODY.encode(), hashlib.sha256).hexdigest()

    assert signature("s3cret", BODY.encode(), 1764213600) == f"t=1764213600,v1={expected}"


def test_the_schedule_doubles_its_waits_over_about_an_hour_then_stops() -> None:
    schedule = RetrySchedule()

    waits = [schedule.delay_after(attempts) for attempts in range(1, 9)]

    assert waits[:-1] == [timedelta(seconds=30 * 2**n) for n in range(7)]
    assert waits[-1] is None
    assert timedelta(minutes=60) < sum(waits[:-1], timedelta()) < timedelta(minutes=65)
    assert RetrySchedule(attempts=1).delay_after(1) is None


async def test_a_failing_endpoint_is_tried_again_later_each_wait_doubling_then_given_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    worker = Worker(schedule=RetrySchedule(attempts=4, first_delay=30))
    worker.endpoint.failures = [retried() for _ in range(4)]
    await worker.queue()
    deliver = worker.deliver

    for wait in (30, 60, 120):
        assert await deliver.deliver_due() == 1
        worker.clock.advance(timedelta(seconds=wait - 1))
        assert await deliver.deliver_due() == 0  # not yet
        worker.clock.advance(timedelta(seconds=1))
    with caplog.at_level(logging.WARNING, "application.webhooks"):
        assert await deliver.deliver_due() == 1

    assert worker.outcomes == [Outcome.RETRYING] * 3 + [Outcome.GIVEN_UP]
    assert worker.kept() == [("GIVEN_UP", 4, "answered 500")]
    assert "given up after 4 attempts: answered 500" in caplog.text
    worker.clock.advance(timedelta(days=1))
    assert await deliver.deliver_due() == 0
    assert len({body for _, body, _ in worker.endpoint.sent}) == 1  # the same webhook each time


async def test_an_endpoint_that_recovers_gets_the_webhook_on_a_later_try() -> None:
    worker = Worker()
    worker.endpoint.failures = [retried("no connection"), retried("answered 503")]
    await worker.queue()
    deliver = worker.deliver

    for wait in (0, 30, 60):
        worker.clock.advance(timedelta(seconds=wait))
        assert await deliver.deliver_due() == 1

    assert worker.outcomes == [Outcome.RETRYING, Outcome.RETRYING, Outcome.DELIVERED]
    assert worker.kept() == []


async def test_a_final_refusal_is_given_up_at_once() -> None:
    worker = Worker()
    worker.endpoint.failures = [WebhookNotDelivered("answered 410", retry=False)]
    await worker.queue()

    await worker.deliver.deliver_due()

    assert worker.outcomes == [Outcome.GIVEN_UP]
    assert worker.kept() == [("GIVEN_UP", 1, "answered 410")]


async def test_a_sender_failing_in_an_unexpected_way_is_retried_like_a_timeout() -> None:
    worker = Worker()
    worker.endpoint.failures = [RuntimeError("a bug")]
    await worker.queue()

    await worker.deliver.deliver_due()

    assert worker.outcomes == [Outcome.RETRYING]
    assert worker.kept() == [("PENDING", 1, "a bug")]


@pytest.mark.parametrize(
    "settings",
    [
        {"webhook_url": None, "webhook_secret": None},
        {"webhook_url": "https://new.example.com/w", "webhook_secret": "new"},
    ],
)
async def test_a_store_that_no_longer_sends_there_is_not_sent_the_rest(settings: dict[str, object]) -> None:
    worker = Worker()
    await worker.queue(2)
    await worker.change_store(**settings)

    assert await worker.deliver.deliver_due() == 2

    assert worker.endpoint.sent == []
    assert worker.outcomes == [Outcome.DROPPED, Outcome.DROPPED]
    assert worker.kept() == []


async def test_a_round_sends_at_most_so_many_at_once_and_the_rest_next() -> None:
    worker = Worker()
    await worker.queue(25)
    deliver = worker.deliver

    assert [await deliver.deliver_due() for _ in range(3)] == [20, 5, 0]
    assert len(worker.endpoint.sent) == 25


async def test_the_running_worker_sends_at_once_when_nudged_and_stops_after_the_attempt_in_hand() -> None:
    worker = Worker()
    worker.endpoint.held = asyncio.Event()
    deliver = worker.deliver
    deliver.start()
    try:
        await worker.queue()
        deliver.nudge()  # it polls only every minute: without this, nothing would go yet
        await until(lambda: worker.endpoint.sent, "sent", within=5)
        stopping = asyncio.create_task(deliver.stop())
        await asyncio.sleep(0.05)
        assert not stopping.done()  # the endpoint has not answered yet
        worker.endpoint.held.set()
        async with asyncio.timeout(5):
            await stopping
    finally:
        worker.endpoint.held.set()
        await deliver.stop()

    assert worker.outcomes == [Outcome.DELIVERED]
    assert worker.kept() == []


async def test_a_round_that_fails_is_logged_and_the_worker_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    worker = Worker()
    await worker.queue()
    away = True

    class Flaky(MemoryUnitOfWork):
        async def commit(self) -> None:
            if away:
                raise ConnectionError("database away")
            await super().commit()

    deliver = DeliverWebhooks(
        lambda: Flaky(worker.db), worker.endpoint, worker.clock, worker.schedule, poll_seconds=0.01
    )
    deliver.start()
    try:
        await until(lambda: "webhooks not delivered this round" in caplog.text, "a round failed", within=5)
        away = False
        await until(lambda: not worker.kept(), "delivered once the database is back", within=5)
    finally:
        await deliver.stop()

    assert len(worker.endpoint.sent) == 1
