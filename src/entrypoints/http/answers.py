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
    WAITING_PAUSED = "WAITING_PAUSED"
    QUEUE_FULL = "QUEUE_FULL"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    POSTPONE_LIMIT = "POSTPONE_LIMIT"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    TOO_MANY_REQUESTS = "TOO_MANY_REQUESTS"
    LOCK_TIMEOUT = "LOCK_TIMEOUT"
    IDEMPOTENCY_KEY_IN_PROGRESS = "IDEMPOTENCY_KEY_IN_PROGRESS"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
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
    notify_at_rank: Annotated[int, msgspec.Meta(ge=1)] | None
    max_postpones: Count
    day_starts_at: Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    webhook_url: str | None
    paused_until: Annotated[datetime, msgspec.Meta(description="While the list is paused.")] | None = None
    webhook_secret: (
        Annotated[
            str,
            msgspec.Meta(description="The webhook's signing secret: answered once, when webhookUrl is set."),
        ]
        | None
    ) = None


class PublicStore(msgspec.Struct, rename="camel", kw_only=True):
    """What anyone sees of a store: counts, no waiting."""

    id: Id
    name: str
    waiting_open: bool
    waiting_count: Count
    estimated_wait_minutes: Count | None
    estimate_source: Literal["history", "configured"] | None
    paused_until: Annotated[datetime, msgspec.Meta(description="While the list is paused.")] | None = None


class WaitingPage(msgspec.Struct, kw_only=True):
    items: list[Waiting]
    next: str | None


Minutes = Annotated[float, msgspec.Meta(ge=0, description="Minutes, to one decimal.")]


class DayRegistrations(msgspec.Struct, kw_only=True):
    total: Count
    user: Annotated[int, msgspec.Meta(ge=0, description="Customers in the app (channel USER).")]
    app: Annotated[int, msgspec.Meta(ge=0, description="Guests at the store's tablet (channel APP).")]


class DayCancellations(msgspec.Struct, rename="camel", kw_only=True):
    """`total` also counts waitings cancelled before the service recorded who cancelled, so it may
    be more than `byCustomer` + `byStore`."""

    total: Count
    by_customer: Annotated[int, msgspec.Meta(ge=0, description="By the customer, or the guest's link.")]
    by_store: Annotated[int, msgspec.Meta(ge=0, description="By the store's staff or an admin.")]


class WaitToCall(msgspec.Struct, rename="camel", kw_only=True):
    """From registration to call, over the day's waitings that were called (whatever became of
    them); percentiles interpolated linearly between the closest ranks (numpy's default, Excel's
    PERCENTILE.INC), null when no one was called."""

    calls: Count
    p50_minutes: Minutes | None
    p90_minutes: Minutes | None


class QuarterHour(msgspec.Struct, kw_only=True):
    start: Annotated[
        datetime, msgspec.Meta(description="The quarter hour's start, in the store's local time and offset.")
    ]
    count: Count


class DayStats(msgspec.Struct, rename="camel", kw_only=True):
    """A store's business day in figures (counts by the waitings' status now)."""

    store_id: Id
    business_date: date
    day_over: Annotated[
        bool, msgspec.Meta(description="The business day has ended: its figures will not change.")
    ]
    registrations: DayRegistrations
    seated: Count
    cancelled: DayCancellations
    no_shows: Count
    left_open: Annotated[
        int,
        msgspec.Meta(
            ge=0,
            description="WAITING or CALLED: for a past day, left open when it ended; for today, open now.",
        ),
    ]
    no_show_rate: (
        Annotated[
            float,
            msgspec.Meta(
                ge=0, le=1, description="noShows / (seated + noShows), to 4 decimals; null if both are 0."
            ),
        ]
        | None
    )
    wait_to_call: WaitToCall
    registrations_per_15_minutes: Annotated[
        list[QuarterHour],
        msgspec.Meta(
            description=(
                "Registrations per quarter hour of local time, from the first registration's to the"
                " last's, empty quarters between them included (empty when no one registered)."
            )
        ),
    ]


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
    "snapshot",
    "registered",
    "opened",
    "closed",
    "paused",
    "updated",
    "postponed",
    "called",
    "seated",
    "cancelled",
    "no_show",
]
WaitingEventName = Literal["snapshot", "rank", "getting_close", "called", "seated", "cancelled", "no_show"]
RequestEventName = Literal["registered", "rejected", "failed"]


class LiveEvent(msgspec.Struct, kw_only=True):
    """One server-sent event of a live stream (its `event` names are each stream's own)."""

    data: str
    id: str | None = None


class StoreEvent(LiveEvent, kw_only=True):
    """A change of the store's list. `data` is one JSON object: for `snapshot` the Store and its
    active list (`{store, items}`), for `opened`, `closed`, `paused` and `updated` the Store, else
    the Waiting (for `postponed`, the one that stepped back, with its new rank)."""

    event: StoreEventName


class WaitingEvent(LiveEvent, kw_only=True):
    """A change of one waiting. `data` is one JSON object: `{rank, estimatedWaitMinutes}` for
    `rank` and `getting_close` (once, when the rank first reaches the store's `notifyAtRank`),
    else the Waiting. The stream ends after `seated`, `cancelled` or `no_show`."""

    event: WaitingEventName


class RequestEvent(LiveEvent, kw_only=True):
    """How a V3 request ended; `data` is the WaitingRequest. The stream then ends."""

    event: RequestEventName


def event_names(event: type[LiveEvent]) -> tuple[str, ...]:
    names: tuple[str, ...] = get_args(get_type_hints(event)["event"])
    return names
