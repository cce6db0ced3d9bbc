"""Idempotent retries: what refusals and the operator's log say, the edges of a final answer, the
races between attempts, and the sweeper. Edges the mutation run (scripts/mutation) found untested
beside tests/contracts/test_idempotency_keys.py. Races are staged with the in-memory keys losing
the one race at hand."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from adapters.persistence.idempotency import MemoryIdempotencyKeys
from application.idempotency import (
    HOLD,
    IdempotencyKeyInProgress,
    IdempotencyKeyReused,
    IdempotentRequests,
    final,
    idempotency_key,
)
from application.ports import KeptAnswer, KeyRecord
from domain.errors import FieldError, ValidationError
from unit.helpers import SettableClock

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
CREATED = KeptAnswer(201, "application/json", b'{"id":1}')
ALICE = "customer::alice"
LOGGER = "application.idempotency"


def requests_on(keys: MemoryIdempotencyKeys, clock: SettableClock | None = None) -> IdempotentRequests:
    return IdempotentRequests(keys, clock or SettableClock(NOW))


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == LOGGER]


def test_a_key_that_is_no_key_is_told_what_a_key_is() -> None:
    with pytest.raises(ValidationError) as refused:
        idempotency_key("two words")

    assert refused.value.errors == [FieldError("Idempotency-Key", "must be 1..255 visible ASCII characters")]


@pytest.mark.parametrize(
    ("status", "kept"), [(199, False), (200, True), (299, True), (300, False), (409, True)]
)
def test_successes_and_refusals_by_the_rules_are_final(status: int, kept: bool) -> None:
    assert final(status) is kept


async def test_refused_attempts_are_told_why() -> None:
    requests = requests_on(MemoryIdempotencyKeys())
    await requests.begin(ALICE, "k", "body-1")

    with pytest.raises(IdempotencyKeyReused) as reused:
        await requests.begin(ALICE, "k", "body-2")
    with pytest.raises(IdempotencyKeyInProgress) as busy:
        await requests.begin(ALICE, "k", "body-1")

    assert reused.value.detail == "this Idempotency-Key was first sent with another request"
    assert busy.value.detail == "the first request with this Idempotency-Key is still being answered"


async def test_a_kept_answer_holds_the_key_no_longer() -> None:
    keys = MemoryIdempotencyKeys()
    requests = requests_on(keys)
    claim = await requests.begin(ALICE, "k", "body")

    await requests.answered(claim, CREATED)

    kept = await keys.get(ALICE, "k")
    assert kept is not None and (kept.answer, kept.held_until) == (CREATED, None)


class ForgottenInBetween(MemoryIdempotencyKeys):
    """The first add finds the key kept, and by the time it is read the sweeper has forgotten it."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = False

    async def add(self, record: KeyRecord) -> bool:
        if not self.lost:
            self.lost = True
            return False
        return await super().add(record)


async def test_a_key_forgotten_between_two_steps_is_claimed_on_the_next_try() -> None:
    claim = await requests_on(ForgottenInBetween()).begin(ALICE, "k", "body")

    assert claim.answer is None


class ExpiredAndRetakenInBetween(MemoryIdempotencyKeys):
    """An expired record that another attempt replaces first: this attempt's replace loses."""

    def __init__(self, other: KeyRecord) -> None:
        super().__init__()
        self.other: KeyRecord | None = other

    async def replace(self, claim: str, record: KeyRecord) -> bool:
        if self.other is not None:
            other, self.other = self.other, None
            await super().replace(claim, other)
            return False
        return await super().replace(claim, record)


async def test_an_expired_key_retaken_and_answered_by_another_attempt_first_gives_that_answer() -> None:
    clock = SettableClock(NOW)
    old = await requests_on(MemoryIdempotencyKeys(), clock).begin(ALICE, "k", "body")
    clock.advance(timedelta(days=1))
    other = replace(
        old, claim="other", expires_at=clock.now() + timedelta(days=1), held_until=None, answer=CREATED
    )
    keys = ExpiredAndRetakenInBetween(other)
    await keys.add(old)

    again = await requests_on(keys, clock).begin(ALICE, "k", "body")

    assert again.answer == CREATED


async def test_taking_over_a_claim_left_behind_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    clock = SettableClock(NOW)
    requests = requests_on(MemoryIdempotencyKeys(), clock)
    await requests.begin(ALICE, "k", "body")
    clock.advance(HOLD)

    with caplog.at_level(logging.INFO, logger=LOGGER):
        await requests.begin(ALICE, "k", "body")

    assert messages(caplog) == [f"idempotency key of {ALICE} taken over from a claim left behind"]


class KeysAway(MemoryIdempotencyKeys):
    async def replace(self, claim: str, record: KeyRecord) -> bool:
        raise ConnectionError("database away")

    async def remove(self, caller: str, key: str, claim: str) -> None:
        raise ConnectionError("database away")


async def test_an_answer_or_a_release_that_cannot_be_kept_is_logged_never_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    keys = KeysAway()
    claim = await requests_on(keys).begin(ALICE, "k", "body")

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        await requests_on(keys).answered(claim, CREATED)
        await requests_on(keys).abandoned(claim)

    why = "ConnectionError('database away')"
    assert messages(caplog) == [
        f"answer for an idempotency key of {ALICE} not kept: {why}",
        f"idempotency key of {ALICE} not let go (it runs out by itself): {why}",
    ]


async def test_an_answer_whose_claim_was_taken_over_is_logged_and_a_kept_one_is_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = SettableClock(NOW)
    requests = requests_on(MemoryIdempotencyKeys(), clock)
    left = await requests.begin(ALICE, "left", "body")
    kept = await requests.begin(ALICE, "kept", "body")
    clock.advance(HOLD)
    await requests.begin(ALICE, "left", "body")  # taken over

    caplog.clear()  # the take-over's INFO line, caught when another test left logging at INFO
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        await requests.answered(kept, CREATED)
        after_the_kept_one = messages(caplog)
        await requests.answered(left, CREATED)

    assert after_the_kept_one == []
    assert messages(caplog) == [
        f"answer for an idempotency key of {ALICE} not kept: its claim was taken over"
    ]


class SweptKeys(MemoryIdempotencyKeys):
    """Each sweep forgets three keys, except the second, which fails."""

    def __init__(self) -> None:
        super().__init__()
        self.sweeps = 0
        self.third = asyncio.Event()

    async def remove_expired(self, now: datetime, most: int) -> int:
        self.sweeps += 1
        if self.sweeps == 3:
            self.third.set()
        if self.sweeps == 2:
            raise ConnectionError("database away")
        return 3


async def test_the_sweeper_sweeps_again_and_again_and_a_failed_sweep_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    keys = SweptKeys()

    with caplog.at_level(logging.INFO, logger=LOGGER):
        sweeper = asyncio.create_task(requests_on(keys).keep_swept(every=0.001))
        await asyncio.wait_for(keys.third.wait(), 1)
        sweeper.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sweeper

    assert messages(caplog)[:3] == [
        "forgot 3 expired idempotency keys",
        "expired idempotency keys not swept: ConnectionError('database away')",
        "forgot 3 expired idempotency keys",
    ]
