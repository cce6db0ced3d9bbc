"""A registration under an `Idempotency-Key`: its first answer kept, and given again to a retry.

The rules are the application's (application/idempotency.py); here is what HTTP adds: the
request's fingerprint (method, path, and the body as JSON with its keys sorted, so that a retry
serialised afresh is the same request), and the answer as its client got it (status, media type,
bytes). A replay says so in `Idempotent-Replayed: true`.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.serialization import encode_json

from application.access import Actor
from application.idempotency import HEADER, IdempotentRequests, caller_of, idempotency_key
from application.ports import KeptAnswer
from application.requests import RegistrationRequest
from application.views import View
from domain.errors import DomainError, ValidationError
from entrypoints.http.problems import PROBLEM_JSON, domain_error

JSON = "application/json"
# Says that the answer is the kept one, not a new decision (as Stripe's API does).
REPLAYED = "Idempotent-Replayed"

Decide = Callable[[RegistrationRequest], Awaitable[View]]
Answer = View | Response[bytes]


async def fingerprint(request: Request[Any, Any, Any]) -> str:
    body = await request.body()
    with contextlib.suppress(msgspec.DecodeError):  # else compared as sent: it is refused anyway
        body = msgspec.json.encode(msgspec.json.decode(body), order="sorted")
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.url.path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


@dataclass(frozen=True)
class Keyed:
    """A registration's HTTP request, and the Idempotency-Key it came with, if any."""

    request: Request[Any, Any, Any]
    key: str | None
    actor: Actor
    requests: IdempotentRequests

    @classmethod
    def of(
        cls, request: Request[Any, Any, Any], key: str | None, actor: Actor, requests: IdempotentRequests
    ) -> Keyed:
        """Refuse (400) a key that is sent but empty, too long, not visible ASCII, or sent twice."""
        if key is None:
            return cls(request, None, actor, requests)
        if len(request.headers.getall(HEADER)) > 1:  # Litestar's parameter is the first of them
            raise ValidationError.of(HEADER, "must be sent once")
        return cls(request, idempotency_key(key), actor, requests)

    async def answer(self, new: RegistrationRequest, decide: Decide, status: int) -> tuple[Answer, bool]:
        """The answer to `new`, decided at most once per key; and whether it is the kept one again.

        The claim's request id is the registration's traceId: an attempt that takes over a claim
        left behind registers, if at all, under the traceId of the one before it.
        """
        if self.key is None:
            return await decide(new), False
        claim = await self.requests.begin(caller_of(self.actor), self.key, await fingerprint(self.request))
        if claim.answer is not None:
            return _response(claim.answer, replayed=True), True
        try:
            view = await decide(replace(new, trace_id=claim.request_id))
        except DomainError as refusal:
            refused = domain_error(self.request, refusal)
            assert refused.status_code is not None
            body = encode_json(refused.content)
            await self.requests.answered(claim, KeptAnswer(refused.status_code, PROBLEM_JSON, body))
            raise  # answered by the exception handler, as without a key: the same problem
        except Exception:
            await self.requests.abandoned(claim)
            raise
        answer = KeptAnswer(status, JSON, encode_json(view))
        await self.requests.answered(claim, answer)
        return _response(answer, replayed=False), False


def _response(answer: KeptAnswer, *, replayed: bool) -> Response[bytes]:
    headers = {REPLAYED: "true"} if replayed else None
    return Response(answer.body, status_code=answer.status, media_type=answer.media_type, headers=headers)
