"""One contract for the idempotency keys (the port), and the rules of idempotent retries on top of
it (application/idempotency.py), run against every implementation: memory, SQLite, PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from adapters.persistence.engine import make_engine
from adapters.persistence.idempotency import MemoryIdempotencyKeys, SqlIdempotencyKeys
from adapters.persistence.schema import upgrade
from application.access import Actor, Role
from application.idempotency import (
    HOLD,
    KEPT_FOR,
    IdempotencyKeyInProgress,
    IdempotencyKeyReused,
    IdempotentRequests,
    caller_of,
    idempotency_key,
)
from application.ports import IdempotencyKeys, KeptAnswer, KeyRecord
from domain.errors import ValidationError
from harness.postgres import emptied

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
SEOUL = timezone(timedelta(hours=9))
CREATED = KeptAnswer(201, "application/json", b'{"id":1,"number":1}')
REFUSED = KeptAnswer(409, "application/problem+json", b'{"code":"ALREADY_WAITING"}')


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def keys(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[IdempotencyKeys]:
    if request.param == "memory":
        yield MemoryIdempotencyKeys()
        return
    if request.param == "postgresql":
        async with emptied(request.getfixturevalue("postgres_url")) as engine:
            yield SqlIdempotencyKeys(engine)
        return
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'contract.db'}")
    await upgrade(engine)
    yield SqlIdempotencyKeys(engine)
    await engine.dispose()


def _record(key: str = "k-1", caller: str = "customer::alice", **fields: object) -> KeyRecord:
    values: dict[str, object] = {
        "caller": caller,
        "key": key,
        "fingerprint": "f" * 64,
        "request_id": f"request-{key}",
        "claim": f"claim-{key}",
        "expires_at": NOW + KEPT_FOR,
        "held_until": NOW + HOLD,
        **fields,
    }
    return KeyRecord(**values)  # type: ignore[arg-type]


# The port.


async def test_a_record_is_added_and_read_back_equal(keys: IdempotencyKeys) -> None:
    waiting = _record()
    # Any offset goes in; the same instant comes out, timezone-aware.
    answered = _record("k-2", expires_at=(NOW + KEPT_FOR).astimezone(SEOUL), held_until=None, answer=CREATED)

    assert await keys.add(waiting)
    assert await keys.add(answered)

    assert await keys.get(waiting.caller, "k-1") == waiting
    kept = await keys.get(answered.caller, "k-2")
    assert kept == answered
    assert kept is not None and kept.expires_at.utcoffset() is not None
    assert await keys.get(waiting.caller, "k-3") is None


async def test_a_second_record_for_the_same_caller_and_key_is_refused(keys: IdempotencyKeys) -> None:
    first = _record()
    assert await keys.add(first)

    assert not await keys.add(_record(fingerprint="0" * 64, claim="another"))

    assert await keys.get(first.caller, first.key) == first
    # Keys belong to their caller, and are compared exactly.
    assert await keys.add(_record(caller="customer::bob"))
    assert await keys.add(_record(key="K-1"))
    assert await keys.add(_record(caller="store:7:alice"))


async def test_keys_and_callers_keep_every_character(keys: IdempotencyKeys) -> None:
    longest = "".join(chr(33 + n % 94) for n in range(255))
    korean = _record(
        longest,
        caller="customer::김민수" + "x" * 100,
        request_id="r",
        claim="c",
        answer=REFUSED,
        held_until=None,
    )

    assert await keys.add(korean)

    assert await keys.get(korean.caller, longest) == korean


async def test_only_the_holding_claim_replaces_a_record(keys: IdempotencyKeys) -> None:
    held = _record()
    await keys.add(held)
    answered = replace(held, held_until=None, answer=CREATED)

    assert not await keys.replace("not-the-claim", answered)
    assert await keys.get(held.caller, held.key) == held
    assert not await keys.replace(held.claim, replace(answered, key="nobody's"))

    assert await keys.replace(held.claim, answered)
    assert await keys.get(held.caller, held.key) == answered
    taken = replace(answered, claim="next", expires_at=NOW + 2 * KEPT_FOR)
    assert await keys.replace(held.claim, taken)
    assert not await keys.replace(held.claim, answered)  # the claim has moved on
    assert await keys.get(held.caller, held.key) == taken


async def test_only_the_holding_claim_removes_a_record(keys: IdempotencyKeys) -> None:
    held = _record()
    await keys.add(held)

    await keys.remove(held.caller, held.key, "not-the-claim")
    await keys.remove("customer::bob", held.key, held.claim)
    assert await keys.get(held.caller, held.key) == held

    await keys.remove(held.caller, held.key, held.claim)
    assert await keys.get(held.caller, held.key) is None
    assert await keys.add(held)


async def test_expired_records_are_removed_soonest_first_and_at_most_so_many(keys: IdempotencyKeys) -> None:
    for n in range(5):
        await keys.add(_record(f"old-{n}", expires_at=NOW - timedelta(minutes=n)))
    await keys.add(_record("at-now", expires_at=NOW))
    await keys.add(_record("later", expires_at=NOW + timedelta(seconds=1)))

    assert await keys.remove_expired(NOW, most=2) == 2
    assert await keys.get("customer::alice", "old-4") is None
    assert await keys.get("customer::alice", "old-3") is None
    assert await keys.get("customer::alice", "old-2") is not None

    assert await keys.remove_expired(NOW, most=10) == 4
    assert await keys.remove_expired(NOW, most=10) == 0
    assert await keys.get("customer::alice", "later") is not None


async def test_a_record_given_a_later_expiry_is_not_removed_for_its_earlier_one(
    keys: IdempotencyKeys,
) -> None:
    first = _record(expires_at=NOW - timedelta(hours=1))
    await keys.add(first)
    renewed = replace(first, claim="renewed", expires_at=NOW + KEPT_FOR)
    await keys.replace(first.claim, renewed)
    removed = _record("gone", expires_at=NOW - timedelta(hours=1))
    await keys.add(removed)
    await keys.remove(removed.caller, removed.key, removed.claim)

    assert await keys.remove_expired(NOW, most=10) == 0

    assert await keys.get(first.caller, first.key) == renewed
    assert await keys.remove_expired(NOW + KEPT_FOR, most=10) == 1


async def test_of_many_adding_the_same_key_at_once_exactly_one_wins(keys: IdempotencyKeys) -> None:
    attempts = [_record(claim=f"claim-{n}") for n in range(20)]

    added = await asyncio.gather(*(keys.add(record) for record in attempts))

    assert sum(added) == 1
    kept = await keys.get("customer::alice", "k-1")
    assert kept == attempts[added.index(True)]


# The rules, on every implementation.


class Clock:
    def __init__(self) -> None:
        self.moment = NOW

    def now(self) -> datetime:
        return self.moment


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def requests(keys: IdempotencyKeys, clock: Clock) -> IdempotentRequests:
    return IdempotentRequests(keys, clock, sweep_batch=2)


ALICE = caller_of(Actor(Role.CUSTOMER, "alice"))


async def test_the_first_attempt_claims_the_key_and_a_retry_gets_its_answer(
    requests: IdempotentRequests, clock: Clock
) -> None:
    claim = await requests.begin(ALICE, "k", "body-1")
    assert claim.answer is None and claim.held_until == NOW + HOLD

    with pytest.raises(IdempotencyKeyInProgress) as busy:
        await requests.begin(ALICE, "k", "body-1")
    assert busy.value.retry_after == 1

    await requests.answered(claim, CREATED)
    clock.moment += timedelta(hours=23)
    again = await requests.begin(ALICE, "k", "body-1")

    assert again.answer == CREATED
    assert again.request_id == claim.request_id


async def test_a_refusal_by_the_rules_is_kept_like_a_success(requests: IdempotentRequests) -> None:
    claim = await requests.begin(ALICE, "k", "body-1")
    await requests.answered(claim, REFUSED)

    assert (await requests.begin(ALICE, "k", "body-1")).answer == REFUSED


@pytest.mark.parametrize("status", [400, 403, 404, 429, 500, 503])
async def test_an_answer_that_decided_nothing_lets_the_key_go(
    requests: IdempotentRequests, status: int
) -> None:
    claim = await requests.begin(ALICE, "k", "body-1")
    await requests.answered(claim, KeptAnswer(status, "application/problem+json", b"{}"))

    # The next attempt is a first one: any body, a new request id.
    fresh = await requests.begin(ALICE, "k", "body-2")
    assert fresh.answer is None and fresh.request_id != claim.request_id


async def test_another_request_under_the_key_is_refused_while_held_and_once_answered(
    requests: IdempotentRequests,
) -> None:
    claim = await requests.begin(ALICE, "k", "body-1")
    with pytest.raises(IdempotencyKeyReused):
        await requests.begin(ALICE, "k", "body-2")
    await requests.answered(claim, CREATED)
    with pytest.raises(IdempotencyKeyReused):
        await requests.begin(ALICE, "k", "body-2")


async def test_other_callers_keys_are_theirs(requests: IdempotentRequests) -> None:
    callers = [
        ALICE,
        caller_of(Actor(Role.CUSTOMER, "bob")),
        caller_of(Actor(Role.STORE, "alice", store_id=1)),
        caller_of(Actor(Role.STORE, "alice", store_id=2)),
        caller_of(Actor(Role.ADMIN, "alice")),
    ]
    assert len(set(callers)) == len(callers)

    claims = [await requests.begin(caller, "k", f"body-{n}") for n, caller in enumerate(callers)]

    assert all(claim.answer is None for claim in claims)


async def test_a_claim_left_behind_is_taken_over_after_the_hold_with_the_same_request_id(
    requests: IdempotentRequests, clock: Clock
) -> None:
    left = await requests.begin(ALICE, "k", "body-1")
    clock.moment += HOLD - timedelta(seconds=1)
    with pytest.raises(IdempotencyKeyInProgress):
        await requests.begin(ALICE, "k", "body-1")
    with pytest.raises(IdempotencyKeyReused):
        await requests.begin(ALICE, "k", "body-2")

    clock.moment += timedelta(seconds=1)
    taken = await requests.begin(ALICE, "k", "body-1")

    assert taken.answer is None and taken.claim != left.claim
    assert taken.request_id == left.request_id  # the registration's traceId: applied once
    assert taken.expires_at == left.expires_at  # 24 hours from the first request, still
    # The first attempt, alive after all, no longer holds the key: its answer is not kept ...
    await requests.answered(left, CREATED)
    await requests.abandoned(left)
    with pytest.raises(IdempotencyKeyInProgress):
        await requests.begin(ALICE, "k", "body-1")
    # ... the one that took over keeps its own.
    await requests.answered(taken, REFUSED)
    assert (await requests.begin(ALICE, "k", "body-1")).answer == REFUSED


async def test_after_24_hours_the_key_is_a_new_one(requests: IdempotentRequests, clock: Clock) -> None:
    first = await requests.begin(ALICE, "k", "body-1")
    await requests.answered(first, CREATED)

    clock.moment += KEPT_FOR - timedelta(microseconds=1)
    assert (await requests.begin(ALICE, "k", "body-1")).answer == CREATED
    clock.moment += timedelta(microseconds=1)
    fresh = await requests.begin(ALICE, "k", "body-2")

    assert fresh.answer is None and fresh.request_id != first.request_id
    assert fresh.expires_at == clock.moment + KEPT_FOR


async def test_the_sweep_forgets_the_expired_keys_in_batches(
    requests: IdempotentRequests, keys: IdempotencyKeys, clock: Clock
) -> None:
    for n in range(5):
        await requests.answered(await requests.begin(ALICE, f"old-{n}", "body"), CREATED)
    clock.moment += timedelta(hours=1)
    kept = await requests.begin(ALICE, "recent", "body")
    clock.moment += KEPT_FOR - timedelta(minutes=30)

    assert await requests.sweep() == 5  # three batches of at most two

    assert await keys.get(ALICE, "old-0") is None
    assert await keys.get(ALICE, "recent") == kept
    assert await requests.sweep() == 0


async def test_of_many_attempts_at_once_one_claims_and_the_others_are_told_in_progress(
    requests: IdempotentRequests,
) -> None:
    outcomes = await asyncio.gather(
        *(requests.begin(ALICE, "k", "body-1") for _ in range(20)), return_exceptions=True
    )

    claims = [outcome for outcome in outcomes if isinstance(outcome, KeyRecord)]
    assert len(claims) == 1
    assert all(isinstance(o, IdempotencyKeyInProgress) for o in outcomes if o is not claims[0])


@pytest.mark.parametrize(
    "key",
    ["a", "~" * 255, "8e03978e-40d5-43e8-bc93-6894a57f9324", '"quoted"', "!#$%&'()*+,-./:;<=>?@[\\]^_`{|}"],
)
def test_a_key_is_1_to_255_visible_ascii_characters(key: str) -> None:
    assert idempotency_key(key) == key


@pytest.mark.parametrize("key", ["", "a" * 256, "a b", " a", "a\tb", "ключ", "é", "a\x7f", "a\x00", "a, b"])
def test_any_other_key_is_a_validation_error(key: str) -> None:
    with pytest.raises(ValidationError) as refused:
        idempotency_key(key)
    assert [e.field for e in refused.value.errors] == ["Idempotency-Key"]
