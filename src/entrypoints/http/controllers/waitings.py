"""A customer's own waiting, and a guest's view of theirs through the status link."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.response import ServerSentEvent

from application.access import Actor
from application.live import LiveUpdates
from application.queries import Queries
from application.views import View
from application.waiting_actions import MoveWaiting
from entrypoints.http.controllers.params import LastEventId, StatusToken
from entrypoints.http.sse import event_stream
from entrypoints.settings import Settings


class WaitingController(Controller):
    path = "/waitings"
    tags = ["waitings"]

    @get("/{waitingId:str}", summary="A waiting with its rank and estimated wait")
    async def show(
        self,
        waiting_id: NamedDependency[int],
        actor: NamedDependency[Actor],
        queries: NamedDependency[Queries],
    ) -> View:
        return await queries.waiting(actor, waiting_id)

    @post("/{waitingId:str}/cancel", status_code=200, summary="The customer cancels their waiting")
    async def cancel(
        self,
        waiting_id: NamedDependency[int],
        actor: NamedDependency[Actor],
        move_waiting: NamedDependency[MoveWaiting],
    ) -> View:
        return await move_waiting.by_customer(actor, waiting_id)

    @get("/{waitingId:str}/events", summary="Live rank and status of a waiting (SSE)")
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
    path = "/guest/waitings"
    tags = ["guest status link"]

    @get("/{status_token:str}", summary="A guest's waiting, name and phone masked")
    async def show(self, status_token: StatusToken, queries: NamedDependency[Queries]) -> View:
        return await queries.guest_waiting(status_token)

    @post("/{status_token:str}/cancel", status_code=200, summary="The guest cancels")
    async def cancel(self, status_token: StatusToken, move_waiting: NamedDependency[MoveWaiting]) -> View:
        return await move_waiting.by_guest(status_token)

    @get("/{status_token:str}/events", summary="Live rank and status for the guest (SSE)")
    async def events(
        self,
        status_token: StatusToken,
        live: NamedDependency[LiveUpdates],
        settings: NamedDependency[Settings],
        last_event_id: LastEventId = None,
    ) -> ServerSentEvent:
        events = await live.guest_waiting(status_token, last_event_id)
        return event_stream(events, settings.keepalive_seconds)
