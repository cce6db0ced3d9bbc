"""The answers' shapes, as the OpenAPI document names them.

The use cases answer plain dicts (application/views.py); these Structs describe those dicts for
clients and client generators. Fields with a default may be absent from an answer.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal, get_args, get_type_hints

import msgspec

from application.requests import RequestState
from domain.customer import Channel
from domain.waiting import WaitingStatus

Id = Annotated[int, msgspec.Meta(ge=1)]
Count = Annotated[int, msgspec.Meta(ge=0)]


class ProblemCode(StrEnum):
    """Every `code` a problem can carry: the domain's rejections and the entrypoint's own."""

    VALIDATION_ERROR = "VALIDATION_ERROR"
    UNAUTHORIZED = "UNAUTHORIZED"
    FORBIDDEN = "FORBIDDEN"
    STORE_NOT_FOUND = "STORE_NOT_FOUND"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    ALREADY_WAITING = "ALREADY_WAITING"
    WAITING_CLOSED = "WAITING_CLOSED"
    QUEUE_FULL = "QUEUE_FULL"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    TOO_MANY_REQUESTS = "TOO_MANY_REQUESTS"
    LOCK_TIMEOUT = "LOCK_TIMEOUT"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    DOMAIN_ERROR = "DOMAIN_ERROR"
    ERROR = "ERROR"


class FieldProblem(msgspec.Struct):
    field: str
    message: str


class Problem(msgspec.Struct, kw_only=True):
    """An RFC 9457 problem; `errors` names the fields of a VALIDATION_ERROR."""

    type: str
    title: str
    status: Annotated[int, msgspec.Meta(ge=400, le=599)]
    detail: str
    code: ProblemCode
    errors: list[FieldProblem] | None = None


class Waiting(msgspec.Struct, rename="camel", kw_only=True):
    """`rank` and `estimatedWaitMinutes` while WAITING; `name`, `phoneNumber` for a guest (masked
    through a status link); `statusToken` to the store and admin only."""

    id: Id
    store_id: Id
    business_date: date
    number: Annotated[int, msgspec.Meta(ge=1)]
    channel: Channel
    status: WaitingStatus
    party_size: Annotated[int, msgspec.Meta(ge=1)]
    created_at: datetime
    rank: Annotated[int, msgspec.Meta(ge=1)] | None = None
    estimated_wait_minutes: Count | None = None
    called_at: datetime | None = None
    seated_at: datetime | None = None
    cancelled_at: datetime | None = None
    no_show_at: datetime | None = None
    user_id: str | None = None
    name: str | None = None
    phone_number: str | None = None
    status_token: str | None = None


class Store(msgspec.Struct, rename="camel", kw_only=True):
    id: Id
    name: str
    time_zone: str
    waiting_open: bool
    max_party_size: Annotated[int, msgspec.Meta(ge=1)]
    max_queue_size: Annotated[int, msgspec.Meta(ge=1)] | None
    avg_service_minutes: Count | None


class PublicStore(msgspec.Struct, rename="camel", kw_only=True):
    """What anyone sees of a store: counts, no waiting."""

    id: Id
    name: str
    waiting_open: bool
    waiting_count: Count
    estimated_wait_minutes: Count | None


class WaitingPage(msgspec.Struct, kw_only=True):
    items: list[Waiting]
    next: str | None


class Queued(msgspec.Struct, rename="camel", kw_only=True):
    trace_id: str
    status: Literal["QUEUED"]


class WaitingRequest(msgspec.Struct, rename="camel", kw_only=True):
    """A V3 request: `waiting` once REGISTERED, `reason` (a rejection code) once REJECTED or FAILED."""

    trace_id: str
    store_id: Id
    status: RequestState
    waiting: Waiting | None = None
    reason: str | None = None


class Live(msgspec.Struct):
    status: Literal["UP"]


class Dependency(msgspec.Struct, kw_only=True):
    status: Literal["UP", "DOWN"]
    kind: str | None = None
    detail: str | None = None
    depth: str | None = None


class Ready(msgspec.Struct):
    status: Literal["UP", "DOWN"]
    dependencies: dict[str, Dependency]


StoreEventName = Literal[
    "snapshot", "registered", "opened", "closed", "called", "seated", "cancelled", "no_show"
]
WaitingEventName = Literal["snapshot", "rank", "called", "seated", "cancelled", "no_show"]
RequestEventName = Literal["registered", "rejected", "failed"]


class LiveEvent(msgspec.Struct, kw_only=True):
    """One server-sent event of a live stream (its `event` names are each stream's own)."""

    data: str
    id: str | None = None


class StoreEvent(LiveEvent, kw_only=True):
    """A change of the store's list. `data` is one JSON object: for `snapshot` the Store and its
    active list (`{store, items}`), for `opened` and `closed` the Store, else the Waiting."""

    event: StoreEventName


class WaitingEvent(LiveEvent, kw_only=True):
    """A change of one waiting. `data` is one JSON object: `{rank, estimatedWaitMinutes}` for
    `rank`, else the Waiting. The stream ends after `seated`, `cancelled` or `no_show`."""

    event: WaitingEventName


class RequestEvent(LiveEvent, kw_only=True):
    """How a V3 request ended; `data` is the WaitingRequest. The stream then ends."""

    event: RequestEventName


def event_names(event: type[LiveEvent]) -> tuple[str, ...]:
    names: tuple[str, ...] = get_args(get_type_hints(event)["event"])
    return names
