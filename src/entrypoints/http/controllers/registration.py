"""Registering: V2 answers the decided Waiting; V3 answers 202 QUEUED and is followed by traceId.

Each attempt is counted by the answer its client gets (`waitline_registrations_total`); an answer
given again under its Idempotency-Key (controllers/idempotent.py) is counted REPLAYED.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.response import ServerSentEvent

from application.access import Actor, Role
from application.idempotency import IdempotentRequests
from application.live import LiveUpdates
from application.queries import Queries
from application.registration import NewRequests, RegisterWaiting, SubmitRegistration
from application.requests import RegistrationRequest, RequestState
from application.views import View
from domain.customer import Channel
from domain.errors import DomainError
from entrypoints.http.answers import Queued, RequestEvent, Waiting, WaitingRequest
from entrypoints.http.bodies import CustomerJoin, GuestJoin
from entrypoints.http.controllers.idempotent import Answer, Decide, Keyed
from entrypoints.http.controllers.params import IdempotencyKeyText, TraceId
from entrypoints.http.json_body import read_json
from entrypoints.http.openapi import CONFLICTS, SIGNED, documented
from entrypoints.http.problems import CODE_OF_STATUS, EXCEPTION_HANDLERS, unavailable
from entrypoints.http.sse import event_stream
from entrypoints.instruments import Registrations, Version
from entrypoints.settings import Settings

# V2 decides at once: a rule may refuse it (409), the store's lock may be busy (503).
_REGISTER_NOW = (*SIGNED, 409)
_CONFLICT = f"{CONFLICTS['register']} {CONFLICTS['key']}"
# V3 refuses nothing at once by its rules, but may be told a key is in progress (409) or reused (422).
_KEYED = (422,)
_QUEUE = (*SIGNED, 409, *_KEYED)
ANSWERED = {Version.V2: str(RequestState.REGISTERED), Version.V3: str(RequestState.QUEUED)}
REPLAYED = "REPLAYED"
# The errors answered 503 UNAVAILABLE, as problems.py maps them.
UNAVAILABLE = tuple(
    kind for kind, handler in EXCEPTION_HANDLERS.items() if isinstance(kind, type) and handler is unavailable
)


def _code(error: Exception) -> str:
    """The code of the problem the client is answered with."""
    if isinstance(error, DomainError):
        return error.code
    if isinstance(error, HTTPException):
        return CODE_OF_STATUS.get(error.status_code, "ERROR")
    if isinstance(error, UNAVAILABLE):
        return "UNAVAILABLE"
    return "INTERNAL_ERROR"


@dataclass
class _Count:
    replayed: bool = False


@contextmanager
def _counted(registrations: Registrations, version: Version, channel: Channel) -> Iterator[_Count]:
    count = _Count()
    try:
        yield count
    except Exception as error:
        registrations.count(version, channel, _code(error))
        raise
    registrations.count(version, channel, REPLAYED if count.replayed else ANSWERED[version])


async def _customer(
    request: Request[Any, Any, Any], actor: Actor, store_id: int, new: NewRequests
) -> RegistrationRequest:
    actor.require_role(Role.CUSTOMER)
    body = await read_json(request, CustomerJoin)
    return new.for_customer(actor, store_id, body.party_size)


async def _guest(
    request: Request[Any, Any, Any], actor: Actor, store_id: int, new: NewRequests
) -> RegistrationRequest:
    actor.require_own_store(store_id)
    body = await read_json(request, GuestJoin)
    return new.for_guest(actor, store_id, body.name, body.phone_number, body.party_size)


def _queued(submit: SubmitRegistration) -> Decide:
    async def queued(request: RegistrationRequest) -> View:
        status = await submit(request)
        return {"traceId": status.trace_id, "status": str(status.state)}

    return queued


class RegisterNowController(Controller):
    path = "/v2"
    tags = ["register (V2, under the store's lock)"]

    @post(
        "/stores/{storeId:str}/waitings",
        status_code=201,
        summary="A customer joins; answered at once",
        **documented(
            Waiting, status=201, body=CustomerJoin, problems=(*_REGISTER_NOW, *_KEYED), conflict=_CONFLICT
        ),
    )
    async def customer(
        self,
        request: Request[Any, Any, Any],
        store_id: NamedDependency[int],
        actor: NamedDependency[Actor],
        new_requests: NamedDependency[NewRequests],
        register: NamedDependency[RegisterWaiting],
        registrations: NamedDependency[Registrations],
        idempotency: NamedDependency[IdempotentRequests],
        idempotency_key: IdempotencyKeyText = None,
    ) -> Answer:
        with _counted(registrations, Version.V2, Channel.USER) as count:
            keyed = Keyed.of(request, idempotency_key, actor, idempotency)
            new = await _customer(request, actor, store_id, new_requests)
            answer, count.replayed = await keyed.answer(new, register, 201)
            return answer

    @post(
        "/app/stores/{storeId:str}/waitings",
        status_code=201,
        summary="A guest joins at the tablet",
        **documented(
            Waiting, status=201, body=GuestJoin, problems=(*_REGISTER_NOW, *_KEYED), conflict=_CONFLICT
        ),
    )
    async def guest(
        self,
        request: Request[Any, Any, Any],
        store_id: NamedDependency[int],
        actor: NamedDependency[Actor],
        new_requests: NamedDependency[NewRequests],
        register: NamedDependency[RegisterWaiting],
        registrations: NamedDependency[Registrations],
        idempotency: NamedDependency[IdempotentRequests],
        idempotency_key: IdempotencyKeyText = None,
    ) -> Answer:
        with _counted(registrations, Version.V2, Channel.APP) as count:
            keyed = Keyed.of(request, idempotency_key, actor, idempotency)
            new = await _guest(request, actor, store_id, new_requests)
            answer, count.replayed = await keyed.answer(new, register, 201)
            return answer


class RegisterQueuedController(Controller):
    path = "/v3"
    tags = ["register (V3, queued)"]

    @post(
        "/stores/{storeId:str}/waitings",
        status_code=202,
        summary="A customer joins; queued",
        **documented(Queued, status=202, body=CustomerJoin, problems=_QUEUE, conflict=CONFLICTS["key"]),
    )
    async def customer(
        self,
        request: Request[Any, Any, Any],
        store_id: NamedDependency[int],
        actor: NamedDependency[Actor],
        new_requests: NamedDependency[NewRequests],
        submit: NamedDependency[SubmitRegistration],
        registrations: NamedDependency[Registrations],
        idempotency: NamedDependency[IdempotentRequests],
        idempotency_key: IdempotencyKeyText = None,
    ) -> Answer:
        with _counted(registrations, Version.V3, Channel.USER) as count:
            keyed = Keyed.of(request, idempotency_key, actor, idempotency)
            new = await _customer(request, actor, store_id, new_requests)
            answer, count.replayed = await keyed.answer(new, _queued(submit), 202)
            return answer

    @post(
        "/app/stores/{storeId:str}/waitings",
        status_code=202,
        summary="A guest joins at the tablet; queued",
        **documented(Queued, status=202, body=GuestJoin, problems=_QUEUE, conflict=CONFLICTS["key"]),
    )
    async def guest(
        self,
        request: Request[Any, Any, Any],
        store_id: NamedDependency[int],
        actor: NamedDependency[Actor],
        new_requests: NamedDependency[NewRequests],
        submit: NamedDependency[SubmitRegistration],
        registrations: NamedDependency[Registrations],
        idempotency: NamedDependency[IdempotentRequests],
        idempotency_key: IdempotencyKeyText = None,
    ) -> Answer:
        with _counted(registrations, Version.V3, Channel.APP) as count:
            keyed = Keyed.of(request, idempotency_key, actor, idempotency)
            new = await _guest(request, actor, store_id, new_requests)
            answer, count.replayed = await keyed.answer(new, _queued(submit), 202)
            return answer

    @get("/waiting-requests/{traceId:str}", summary="A queued request's status", **documented(WaitingRequest))
    async def request_status(
        self, traceId: TraceId, actor: NamedDependency[Actor], queries: NamedDependency[Queries]
    ) -> View:
        return await queries.request(actor, traceId)

    @get(
        "/waiting-requests/{traceId:str}/events",
        summary="The request's outcome as one SSE event",
        **documented(RequestEvent),
    )
    async def request_events(
        self,
        traceId: TraceId,
        actor: NamedDependency[Actor],
        live: NamedDependency[LiveUpdates],
        settings: NamedDependency[Settings],
    ) -> ServerSentEvent:
        return event_stream(await live.request(actor, traceId), settings.keepalive_seconds)
