"""Stores: creation, settings, the public view, opening, closing and pausing, the staff's list and its
live stream."""

from __future__ import annotations

import hashlib
import re
from datetime import date, time
from typing import Annotated, Any

import msgspec
from litestar import Controller, MediaType, Request, Response, get, patch, post
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import OpenAPIType
from litestar.params import Parameter, QueryParameter
from litestar.response import ServerSentEvent

from application.access import Actor, Role
from application.live import LiveUpdates
from application.queries import MAX_PAGE_SIZE, PAGE_SIZE, Queries
from application.stats import ReadDayStats
from application.stores import CreateStore, NewStore, StoreChanges, SwitchWaiting, UpdateStore
from application.views import View
from application.waiting_actions import MoveWaiting
from domain.errors import ValidationError
from domain.waiting import WaitingStatus
from entrypoints.http.answers import DayStats, PublicStore, Store, StoreEvent, Waiting, WaitingPage
from entrypoints.http.bodies import NewStoreBody, PauseBody, StoreSettingsBody
from entrypoints.http.controllers.params import LastEventId
from entrypoints.http.json_body import read_json
from entrypoints.http.openapi import ANYONE, CONFLICTS, SIGNED, documented
from entrypoints.http.sse import event_stream
from entrypoints.settings import Settings


def _transition(action: str, path: str, summary: str) -> HTTPRouteHandler:
    """The store's staff moves one of its waitings along (call, seat, no-show, cancel)."""

    async def move(
        self: Controller,
        store_id: NamedDependency[int],
        waiting_id: NamedDependency[int],
        actor: NamedDependency[Actor],
        move_waiting: NamedDependency[MoveWaiting],
    ) -> View:
        return await move_waiting.by_store(actor, store_id, waiting_id, action)

    move.__name__ = action
    route = f"/{{storeId:str}}/waitings/{{waitingId:str}}/{path}"
    answers = documented(Waiting, problems=(*SIGNED, 409), conflict=CONFLICTS["move"])
    return post(route, status_code=200, summary=summary, **answers)(move)


class StoreController(Controller):
    path = "/stores"
    tags = ["stores"]

    @post(
        "/",
        status_code=201,
        summary="Create a store (admin)",
        **documented(Store, status=201, body=NewStoreBody),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        actor: NamedDependency[Actor],
        create_store: NamedDependency[CreateStore],
    ) -> View:
        actor.require_role(Role.ADMIN)
        body = await read_json(request, NewStoreBody)
        new = NewStore(
            name=body.name,
            time_zone=body.time_zone,
            max_party_size=body.max_party_size,
            max_queue_size=body.max_queue_size,
            avg_service_minutes=body.avg_service_minutes,
            waiting_open=body.waiting_open,
        )
        return await create_store(actor, new)

    @get(
        "/{storeId:str}",
        summary="A store's public view: no waiting, only counts (cacheable for 1 s)",
        security=[{}],
        response_headers=[
            ResponseHeader(name="ETag", description="This version of the view.", documentation_only=True),
            ResponseHeader(name="Cache-Control", description="public, max-age=1", documentation_only=True),
        ],
        **documented(PublicStore, problems=(*ANYONE, 404), not_modified=True),
    )
    async def public(
        self,
        request: Request[Any, Any, Any],
        store_id: NamedDependency[int],
        queries: NamedDependency[Queries],
    ) -> Response[Any]:
        # What a crowd polls: a client or a cache that has this version is told so in a few bytes.
        body = _json.encode(await queries.public_store(store_id))
        tag = f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'
        headers = {"ETag": tag, "Cache-Control": "public, max-age=1"}
        if {tag, "*"} & _tags(request.headers.get("if-none-match", "")):
            return Response(b"", status_code=304, headers=headers)
        return Response(body, media_type=MediaType.JSON, headers=headers)

    @patch(
        "/{storeId:str}",
        status_code=200,
        summary="Change a store's settings (null clears one)",
        **documented(Store, body=StoreSettingsBody),
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        store_id: NamedDependency[int],
        actor: NamedDependency[Actor],
        update_store: NamedDependency[UpdateStore],
    ) -> View:
        actor.require_staff(store_id)
        body = await read_json(request, StoreSettingsBody)
        return await update_store(actor, store_id, _changes(body))

    @post(
        "/{storeId:str}/waiting/pause",
        status_code=200,
        summary="Refuse registrations for 1..240 minutes; the list opens again by itself",
        **documented(Store, body=PauseBody, problems=(*SIGNED, 409), conflict=CONFLICTS["pause"]),
    )
    async def pause_waiting(
        self,
        request: Request[Any, Any, Any],
        store_id: NamedDependency[int],
        actor: NamedDependency[Actor],
        switch_waiting: NamedDependency[SwitchWaiting],
    ) -> View:
        actor.require_staff(store_id)
        body = await read_json(request, PauseBody)
        return await switch_waiting.pause(actor, store_id, body.minutes)

    @post(
        "/{storeId:str}/waiting/open",
        status_code=200,
        summary="Start taking registrations",
        **documented(Store),
    )
    async def open_waiting(
        self,
        store_id: NamedDependency[int],
        actor: NamedDependency[Actor],
        switch_waiting: NamedDependency[SwitchWaiting],
    ) -> View:
        return await switch_waiting(actor, store_id, open_=True)

    @post(
        "/{storeId:str}/waiting/close",
        status_code=200,
        summary="Stop taking registrations",
        **documented(Store),
    )
    async def close_waiting(
        self,
        store_id: NamedDependency[int],
        actor: NamedDependency[Actor],
        switch_waiting: NamedDependency[SwitchWaiting],
    ) -> View:
        return await switch_waiting(actor, store_id, open_=False)

    @get(
        "/{storeId:str}/waitings",
        summary="Today's waitings in queue order, a page at a time",
        **documented(WaitingPage),
    )
    async def waitings(
        self,
        store_id: NamedDependency[int],
        actor: NamedDependency[Actor],
        queries: NamedDependency[Queries],
        status: Annotated[
            WaitingStatus | None, Parameter(description="Only waitings in this status.")
        ] = None,
        limit: Annotated[
            int,
            Parameter(
                description="At most this many.", schema_extra={"minimum": 1, "maximum": MAX_PAGE_SIZE}
            ),
        ] = PAGE_SIZE,
        after: Annotated[str | None, Parameter(description="The `next` of the previous page.")] = None,
    ) -> View:
        return await queries.store_waitings(actor, store_id, status, limit, after)

    call = _transition("call", "call", "Call a waiting")
    seat = _transition("seat", "seat", "Seat a called waiting")
    no_show = _transition("no_show", "no-show", "Mark a called waiting as a no-show")
    cancel = _transition("cancel", "cancel", "Cancel a waiting")

    @get(
        "/{storeId:str}/events",
        summary="Live changes of the store's list (SSE)",
        **documented(StoreEvent),
    )
    async def events(
        self,
        store_id: NamedDependency[int],
        actor: NamedDependency[Actor],
        live: NamedDependency[LiveUpdates],
        settings: NamedDependency[Settings],
        last_event_id: LastEventId = None,
    ) -> ServerSentEvent:
        events = await live.store(actor, store_id, last_event_id)
        return event_stream(events, settings.keepalive_seconds)

    @get(
        "/{storeId:str}/stats",
        summary="A business day in figures: today's, or the one `date` names",
        **documented(DayStats),
    )
    async def stats(
        self,
        store_id: NamedDependency[int],
        actor: NamedDependency[Actor],
        day_stats: NamedDependency[ReadDayStats],
        day: Annotated[
            str | None,
            QueryParameter(
                name="date",
                description="A business day (YYYY-MM-DD); today's when absent.",
                schema_extra={"one_of": None, "type": OpenAPIType.STRING, "format": "date"},
            ),
        ] = None,
    ) -> DayStats:
        actor.require_staff(store_id)
        stats = await day_stats(actor, store_id, _date(day))
        return msgspec.convert(stats, DayStats, from_attributes=True)


_json = msgspec.json.Encoder()
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _changes(body: StoreSettingsBody) -> StoreChanges:
    named = {
        field: value
        for field in StoreSettingsBody.__struct_fields__
        if (value := getattr(body, field)) is not msgspec.UNSET
    }
    if isinstance(named.get("day_starts_at"), str):
        named["day_starts_at"] = time.fromisoformat(named["day_starts_at"])
    return StoreChanges(**named)


def _date(text: str | None) -> date | None:
    """Read strictly: Python's own reading also takes "20260302" or "2026-W10-1"; Litestar's takes
    "null" for no date."""
    if text is None:
        return None
    try:
        if _DATE.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise ValidationError.of("date", "must be a date, YYYY-MM-DD")


def _tags(if_none_match: str) -> set[str]:
    """The entity tags of an If-None-Match header (weak ones compare as strong: RFC 9110, 13.1.2)."""
    if if_none_match.strip() == "*":
        return {"*"}
    return {tag.strip().removeprefix("W/") for tag in if_none_match.split(",") if tag.strip()}
