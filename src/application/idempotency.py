"""Idempotent retries: a registration sent again under its Idempotency-Key gets the first answer.

draft-ietf-httpapi-idempotency-key-header, as API.md decides:

- A key is 1..255 visible ASCII characters and belongs to its caller (the token's role and
  subject, and a store token's store): another caller's same key is another key.
- The first request under a key claims it. Until its answer is kept, the same request again is
  refused IDEMPOTENCY_KEY_IN_PROGRESS (retry shortly); once kept, it gets that answer again and
  nothing new is done. Another request (method, path or body) under the key is refused
  IDEMPOTENCY_KEY_REUSED.
- Only final answers are kept: a success, and a refusal by the rules (409: ALREADY_WAITING,
  WAITING_CLOSED, ...): the request was decided, and asking again would not change that. Any
  other answer means nothing was done (503: the store busy, the queue away; 400, 403, 404: the
  request or the store was wrong): the claim is let go, and the next attempt is a first one.
- A claim left behind (its process died, its client hung up half-way) holds the key for `hold`
  at most (`HOLD`, or longer where the settings allow slower answers); then the next attempt
  takes it over with the same request id. That id is the
  registration's traceId, which the service applies at most once (DOMAIN.md rule 5): an attempt
  that got through before the crash is not registered twice.
- A key is kept `KEPT_FOR` (24 hours) from its first request; after that it is a new key. The
  expired ones are forgotten by `sweep`, a batch at a time, apart from the requests.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from dataclasses import replace
from datetime import timedelta

from application.access import Actor
from application.ports import Clock, IdempotencyKeys, KeptAnswer, KeyRecord
from domain.errors import DomainError, ValidationError

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
KEY = re.compile(r"[\x21-\x7e]{1,255}")
KEPT_FOR = timedelta(hours=24)
# At least: longer than an answer takes with the default settings (V2 waits 5 s for the store's
# lock and holds it 10 s at most, V3 waits 2 s for the broker); the container allows for longer ones.
HOLD = timedelta(seconds=60)
RETRY_AFTER_SECONDS = 1
SWEEP_BATCH = 1_000
SWEEP_EVERY_SECONDS = 60.0
# Each lost race means another attempt changed the record in between: rare, and never endless.
ATTEMPTS = 3


class IdempotencyKeyReused(DomainError):
    """The key was first sent with another request (method, path or body)."""

    code = "IDEMPOTENCY_KEY_REUSED"


class IdempotencyKeyInProgress(DomainError):
    """The first request under the key is still being answered."""

    code = "IDEMPOTENCY_KEY_IN_PROGRESS"
    retry_after = RETRY_AFTER_SECONDS


def idempotency_key(raw: str) -> str:
    if not KEY.fullmatch(raw):
        raise ValidationError.of(HEADER, "must be 1..255 visible ASCII characters")
    return raw


def caller_of(actor: Actor) -> str:
    """Whose keys these are: the role and subject, and the store a store's token acts for."""
    return f"{actor.role}:{actor.store_id or ''}:{actor.subject}"


def final(status: int) -> bool:
    """An answer to keep: the request was decided, a success or a refusal by the rules."""
    return 200 <= status < 300 or status == 409


class IdempotentRequests:
    """Claim a key, then keep the claim's answer (or let the claim go)."""

    def __init__(
        self,
        keys: IdempotencyKeys,
        clock: Clock,
        *,
        kept_for: timedelta = KEPT_FOR,
        hold: timedelta = HOLD,
        sweep_batch: int = SWEEP_BATCH,
    ) -> None:
        self._keys, self._clock = keys, clock
        self._kept_for, self._hold, self._sweep_batch = kept_for, hold, sweep_batch

    async def begin(self, caller: str, key: str, fingerprint: str) -> KeyRecord:
        """The key's record: with an answer, the one to give again; without, this attempt's claim,
        to end with `answered` or `abandoned`.

        Raise `IdempotencyKeyReused` for another request under a kept key, and
        `IdempotencyKeyInProgress` while another attempt holds it.
        """
        for _ in range(ATTEMPTS):
            now = self._clock.now()
            fresh = KeyRecord(
                caller=caller,
                key=key,
                fingerprint=fingerprint,
                request_id=str(uuid.uuid4()),
                claim=uuid.uuid4().hex,
                expires_at=now + self._kept_for,
                held_until=now + self._hold,
            )
            if await self._keys.add(fresh):
                return fresh
            kept = await self._keys.get(caller, key)
            if kept is None:
                continue  # forgotten in between
            if kept.expires_at <= now:
                if await self._keys.replace(kept.claim, fresh):
                    return fresh
                continue
            if kept.fingerprint != fingerprint:
                raise IdempotencyKeyReused(f"this {HEADER} was first sent with another request")
            if kept.answer is not None:
                return kept
            if kept.held_until is not None and kept.held_until > now:
                break
            taken = replace(kept, claim=uuid.uuid4().hex, held_until=now + self._hold)
            if await self._keys.replace(kept.claim, taken):
                log.info("idempotency key of %s taken over from a claim left behind", caller)
                return taken
        raise IdempotencyKeyInProgress(f"the first request with this {HEADER} is still being answered")

    async def answered(self, claim: KeyRecord, answer: KeptAnswer) -> None:
        """Keep a final answer for the claim's key; let the claim go otherwise.

        Never raises: the client gets its answer even if it cannot be kept (the claim then runs
        out after its hold, and a retry is decided again under the same request id).
        """
        if not final(answer.status):
            await self.abandoned(claim)
            return
        try:
            kept = await self._keys.replace(claim.claim, replace(claim, held_until=None, answer=answer))
        except Exception as error:
            log.warning("answer for an idempotency key of %s not kept: %r", claim.caller, error)
            return
        if not kept:
            log.warning(
                "answer for an idempotency key of %s not kept: its claim was taken over", claim.caller
            )

    async def abandoned(self, claim: KeyRecord) -> None:
        """Nothing was done for the claim: let it go, so that the next attempt is a first one."""
        try:
            await self._keys.remove(claim.caller, claim.key, claim.claim)
        except Exception as error:
            log.warning("idempotency key of %s not let go (it runs out by itself): %r", claim.caller, error)

    async def sweep(self) -> int:
        """Forget the keys expired by now, a batch at a time; how many."""
        now, removed = self._clock.now(), 0
        while True:
            batch = await self._keys.remove_expired(now, self._sweep_batch)
            removed += batch
            if batch < self._sweep_batch:
                return removed

    async def keep_swept(self, every: float = SWEEP_EVERY_SECONDS) -> None:
        """Sweep now and then every `every` seconds, until cancelled; a failed sweep is tried again later."""
        while True:
            try:
                if removed := await self.sweep():
                    log.info("forgot %d expired idempotency keys", removed)
            except Exception as error:
                log.warning("expired idempotency keys not swept: %r", error)
            await asyncio.sleep(every)
