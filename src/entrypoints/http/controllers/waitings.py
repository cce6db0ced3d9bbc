"""A customer's own waiting, and a guest's view of theirs through the status link."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.response import ServerSentEvent

from application.access import Actor
from application.live import LiveUpdates
from application.queries import Queries
from application.views import View
from application.waiting_actions import MoveWaiting
from entrypoints.http.answers import Waiting, WaitingEvent
from entrypoints.http.bodies import PostponeBody
from entrypoints.http.controllers.params import LastEventId, StatusToken
from entrypoints.http.json_body import read_json
from entrypoints.http.openapi import ANYONE, CONFLICTS, SIGNED, documented
from entrypoints.http.sse import event_stream
from entrypoints.settings import Settings

_GUEST = (*ANYONE, 404)


class WaitingController(Controller):
    path = "/waitings"
    tags = ["waitings"]

    @get("/{waitingId:str}", summary="A waiting with its rank and estimated wait", **documented(Waiting))
    async def show(
        self,
        waiting_id: NamedDependency[int],
        actor: NamedDependency[Actor],
        queries: NamedDependency[Queries],
    ) -> View:
        return await queries.waiting(actor, waiting_id)

    @post(
        "/{waitingId:str}/cancel",
        status_code=200,
        summary="The customer cancels their waiting",
        **documented(Waiting, problems=(*SIGNED, 409), conflict=CONFLICTS["move"]),
    )
    async def cancel(
        self,
        waiting_id: NamedDependency[int],
        actor: NamedDependency[Actor],
        move_waiting: NamedDependency[MoveWaiting],
    ) -> View:
        return await move_waiting.by_customer(actor, waiting_id)

    @post(
        "/{waitingId:str}/postpone",
        status_code=200,
        summary="The customer steps back 1..5 places in the queue (the number stays)",
        **documented(Waiting, body=PostponeBody, problems=(*SIGNED, 409), conflict=CONFLICTS["postpone"]),
    )
    async def postpone(
        self,
        request: Request[Any, Any, Any],
        waiting_id: NamedDependency[int],
        actor: NamedDependency[Actor],
        move_waiting: NamedDependency[MoveWaiting],
    ) -> View:
        body = await read_json(request, PostponeBody)
        return await move_waiting.postpone(actor, waiting_id, body.places)

    @get(
        "/{waitingId:str}/events",
        summary="Live rank and status of a waiting (SSE)",
        **documented(WaitingEvent),
    )
    async def events(
        self,
        waiting_id: NamedDependency[int],
        actor: NamedDependency[Actor],
        live: NamedDependency[LiveUpdates],
        settings: NamedDependency[Settings],
        last_event_id: LastEventId = None,
    ) -> ServerSentEvent:
        events = await live.waiting(actor, waiting_id, last_event_id)
        return event_stream(events, settings.keepalive_seconds)


class GuestController(Controller):
    """The status token in the path is the credential: no Bearer token."""

    path = "/guest/waitings"
    tags = ["guest status link"]
    security = [{}]

    @get(
        "/{statusToken:str}",
        summary="A guest's waiting, name and phone masked",
        **documented(Waiting, problems=_GUEST),
    )
    async def show(self, statusToken: StatusToken, queries: NamedDependency[Queries]) -> View:
        return await queries.guest_waiting(statusToken)

    @post(
        "/{statusToken:str}/cancel",
        status_code=200,
        summary="The guest cancels",
        **documented(Waiting, problems=(*_GUEST, 409), conflict=CONFLICTS["move"]),
    )
    async def cancel(self, statusToken: StatusToken, move_waiting: NamedDependency[MoveWaiting]) -> View:
        return await move_waiting.by_guest(statusToken)

    @post(
        "/{statusToken:str}/postpone",
        status_code=200,
        summary="The guest steps back 1..5 places in the queue (the number stays)",
        **documented(Waiting, body=PostponeBody, problems=(*_GUEST, 409), conflict=CONFLICTS["postpone"]),
    )
    async def postpone(
        self,
        request: Request[Any, Any, Any],
        statusToken: StatusToken,
        move_waiting: NamedDependency[MoveWaiting],
    ) -> View:
        body = await read_json(request, PostponeBody)
        return await move_waiting.postpone_by_guest(statusToken, body.places)

    @get(
        "/{statusToken:str}/events",
        summary="Live rank and status for the guest (SSE)",
        **documented(WaitingEvent, problems=_GUEST),
    )
    async def events(
        self,
        statusToken: StatusToken,
        live: NamedDependency[LiveUpdates],
        settings: NamedDependency[Settings],
        last_event_id: LastEventId = None,
    ) -> ServerSentEvent:
        events = await live.guest_waiting(statusToken, last_event_id)
        return event_stream(events, settings.keepalive_seconds)
