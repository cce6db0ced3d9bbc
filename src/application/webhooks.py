"""Store webhooks (API.md, "Store tools"): signed, kept in the outbox with the change that made
them, and sent by a worker apart from any request: at least once, retried with exponential
back-off, given up on after the last attempt.

Every process that runs a worker takes due deliveries from the same outbox (a claim holds one
for `HOLD`), so a webhook made by one process may be sent by another; one made here is sent at
once (`nudge`), the others within `poll_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from application.ports import (
    Clock,
    NewWebhook,
    UnitOfWork,
    UnitOfWorkFactory,
    WebhookDelivery,
    WebhookNotDelivered,
    WebhookSender,
)
from domain.store import Store
from domain.waiting import Waiting

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Waitline-Signature"
# Longer than any attempt takes (the sender gives up on an endpoint after at most 60 s): a claim
# left by a process that died is taken again after it.
HOLD = timedelta(minutes=2)
MOST_AT_ONCE = 20


def signature(secret: str, body: bytes, at: int) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, the key the secret's UTF-8."""
    mac = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def getting_close_webhook(store: Store, waiting: Waiting, rank: int, now: datetime) -> NewWebhook:
    assert store.webhook_url is not None
    body = {
        "type": "getting_close",
        "storeId": store.id,
        "waitingId": waiting.id,
        "number": waiting.number,
        "rank": rank,
        "occurredAt": now.isoformat(),
    }
    return NewWebhook(store.id, store.webhook_url, json.dumps(body, separators=(",", ":")))


@dataclass(frozen=True)
class RetrySchedule:
    """At most `attempts` tries, the waits between them doubling from `first_delay` seconds
    (by default 8 tries over about an hour: 30 s, 1, 2, 4, 8, 16 and 32 minutes)."""

    attempts: int = 8
    first_delay: float = 30.0

    def delay_after(self, attempts: int) -> timedelta | None:
        """How long to wait after `attempts` failed tries; None: no more."""
        if attempts >= self.attempts:
            return None
        return timedelta(seconds=self.first_delay * 2 ** (attempts - 1))


class Outcome(StrEnum):
    """What came of one attempt."""

    DELIVERED = "delivered"
    RETRYING = "retrying"
    GIVEN_UP = "given_up"
    DROPPED = "dropped"
    """The store no longer sends webhooks to that address: the delivery is forgotten unsent."""


def _tell_nobody(outcome: Outcome) -> None:
    return None


class DeliverWebhooks:
    """The worker: claims what is due, sends each (all of a round at once), keeps each outcome."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        sender: WebhookSender,
        clock: Clock,
        schedule: RetrySchedule,
        *,
        poll_seconds: float = 1.0,
        most: int = MOST_AT_ONCE,
        tell: Callable[[Outcome], None] = _tell_nobody,
    ) -> None:
        self._uow, self._sender, self._clock, self._schedule = uow, sender, clock, schedule
        self._poll, self._most, self._tell = poll_seconds, most, tell
        self._due = asyncio.Event()
        self._stopping = False
        self._working: asyncio.Task[None] | None = None

    def nudge(self) -> None:
        """A webhook was just queued: look now rather than at the next poll."""
        self._due.set()

    def start(self) -> None:
        self._stopping = False
        self._working = asyncio.create_task(self._work())

    async def stop(self) -> None:
        """Let the round in hand finish (each attempt is bounded by the sender's timeout), then stop."""
        self._stopping = True
        self._due.set()
        if self._working is not None:
            await self._working
            self._working = None

    async def _work(self) -> None:
        while not self._stopping:
            self._due.clear()
            try:
                busy = await self.deliver_due() == self._most
            except Exception as error:
                # The database is away: what is due stays due; look again later.
                log.warning("webhooks not delivered this round: %r", error)
                busy = False
            if not busy and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._due.wait(), self._poll)

    async def deliver_due(self) -> int:
        """One round; how many deliveries were due."""
        now = self._clock.now()
        async with self._uow() as uow:
            due = await uow.webhooks.claim(now, now + HOLD, self._most)
            stores: dict[int, Store | None] = {}
            for delivery in due:
                if delivery.store_id not in stores:
                    stores[delivery.store_id] = await uow.stores.get(delivery.store_id)
            await uow.commit()
        outcomes = await asyncio.gather(
            *(self._deliver(d, _secret(stores[d.store_id], d)) for d in due), return_exceptions=True
        )
        for delivery, outcome in zip(due, outcomes, strict=True):
            if isinstance(outcome, Exception):
                log.warning(
                    "webhook %d: its outcome was not kept, it will be sent again: %r", delivery.id, outcome
                )
            elif isinstance(outcome, Outcome):
                self._tell(outcome)
        return len(due)

    async def _deliver(self, delivery: WebhookDelivery, secret: str | None) -> Outcome:
        if secret is None:
            log.info(
                "webhook %d dropped: store %d no longer sends webhooks there", delivery.id, delivery.store_id
            )
            await self._keep(lambda uow: uow.webhooks.finish(delivery))
            return Outcome.DROPPED
        body = delivery.body.encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(secret, body, int(self._clock.now().timestamp())),
        }
        try:
            await self._sender.send(delivery.url, body, headers)
        except Exception as error:
            return await self._failed(delivery, error)
        await self._keep(lambda uow: uow.webhooks.finish(delivery))
        return Outcome.DELIVERED

    async def _failed(self, delivery: WebhookDelivery, error: Exception) -> Outcome:
        # Anything but a refusal the sender understood (a bug, say) is retried like a timeout:
        # the attempts still run out.
        retry = error.retry if isinstance(error, WebhookNotDelivered) else True
        reason = str(error) or repr(error)
        delay = self._schedule.delay_after(delivery.attempts) if retry else None
        if delay is None:
            log.warning(
                "webhook %d to store %d given up after %d attempts: %s",
                delivery.id,
                delivery.store_id,
                delivery.attempts,
                reason,
            )
            await self._keep(lambda uow: uow.webhooks.give_up(delivery, reason))
            return Outcome.GIVEN_UP
        log.info(
            "webhook %d attempt %d failed (%s); next in %s", delivery.id, delivery.attempts, reason, delay
        )
        at = self._clock.now() + delay
        await self._keep(lambda uow: uow.webhooks.retry(delivery, at, reason))
        return Outcome.RETRYING

    async def _keep(self, change: Callable[[UnitOfWork], Awaitable[None]]) -> None:
        async with self._uow() as uow:
            await change(uow)
            await uow.commit()


def _secret(store: Store | None, delivery: WebhookDelivery) -> str | None:
    """The store's signing secret, while the store still sends its webhooks to the delivery's URL
    (a new URL came with a new secret; the old endpoint is not sent the rest)."""
    if store is None or store.webhook_url != delivery.url:
        return None
    return store.webhook_secret
