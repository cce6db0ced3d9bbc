"""What the OpenAPI document says of each operation beyond what Litestar reads from its signature.

`documented(...)` gives a route decorator its answers (`ResponseSpec`s: the success's shape, and
one shared `Problem` schema for every problem status it can answer), the body it reads, and an
operation class that adds the `Retry-After` header to 429 and 503.

Bodies are read by hand (json_body.read_json: strictly, and only after the caller is
authenticated), not as Litestar's `data`, which would be decoded before the handler runs and
leniently ("2" for an integer). Litestar documents a request body from a `data` parameter of the
handler or of one of its dependencies; `documented(body=...)` declares such a dependency, which
no handler asks for (so it never runs), only to lend the body's type to the document.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller
from litestar.di import Provide
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIHeader, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.params import Body
from litestar.types import Method

from entrypoints.http.answers import LiveEvent, Problem, event_names
from entrypoints.http.problems import PROBLEM_JSON

EVENT_STREAM = "text/event-stream"

PROBLEMS = {
    400: "VALIDATION_ERROR: a malformed id, parameter or body; `errors` names the fields.",
    401: "UNAUTHORIZED: no Bearer token, or one that is expired, badly signed or incomplete.",
    403: "FORBIDDEN: the token's role or store may not do this.",
    404: "STORE_NOT_FOUND or NOT_FOUND (also for what the caller may not see).",
    409: "A rule refused it: see `code`.",
    413: "PAYLOAD_TOO_LARGE: the body is over the limit (64 KiB by default).",
    415: "UNSUPPORTED_MEDIA_TYPE: the body must be application/json.",
    422: "IDEMPOTENCY_KEY_REUSED: this Idempotency-Key was first sent with another body or path.",
    429: "TOO_MANY_REQUESTS: over the limit of requests a minute from this address.",
    503: "LOCK_TIMEOUT or UNAVAILABLE: retry after `Retry-After` seconds.",
}
CONFLICTS = {
    "register": (
        "WAITING_CLOSED, WAITING_PAUSED, ALREADY_WAITING or QUEUE_FULL (the first that applies, in that order)."
    ),
    "pause": "WAITING_CLOSED: a closed list cannot be paused; open it first.",
    "postpone": (
        "POSTPONE_LIMIT: the waiting postponed as often as its store allows; "
        "INVALID_TRANSITION: it is no longer WAITING."
    ),
    "move": "INVALID_TRANSITION: the waiting is not in a status this action applies to.",
    "key": (
        "IDEMPOTENCY_KEY_IN_PROGRESS: the first request with this Idempotency-Key is still being"
        " answered; retry after `Retry-After` seconds."
    ),
}

# What every operation may answer: any request may be over the rate limit, and any that reads
# or writes the database may find it unavailable.
ANYONE = (400, 429, 503)
SIGNED = (*ANYONE, 401, 403, 404)
WITH_BODY = (413, 415)

RETRY_AFTER = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.INTEGER, minimum=0),
    description="Seconds to wait before retrying.",
    required=True,
)


@dataclass
class DocumentedOperation(Operation):
    """An operation whose 429 and 503 answers say they carry `Retry-After`."""

    def __post_init__(self) -> None:
        for status, response in (self.responses or {}).items():
            if status in ("429", "503") and isinstance(response, OpenAPIResponse):
                response.headers = {**(response.headers or {}), "Retry-After": RETRY_AFTER}


def operation_id(handler: HTTPRouteHandler, _: Method, __: list[Any]) -> str:
    """The controller's name and the handler's, camelCased (`storeCreate`, `registerNowCustomer`):
    the names a generated client gives its functions."""
    # A controller's handlers are its bound methods.
    controller = getattr(handler.fn, "__self__", None)
    owner = type(controller).__name__ if isinstance(controller, Controller) else ""
    words = [*re.findall(r"[A-Z][a-z]*", owner.removesuffix("Controller")), *handler.handler_name.split("_")]
    return str(words[0].lower() + "".join(word.title() for word in words[1:]))


def _problem(status: int, conflict: str | None) -> ResponseSpec:
    description = conflict if status == 409 and conflict else PROBLEMS[status]
    return ResponseSpec(Problem, media_type=PROBLEM_JSON, description=description, generate_examples=False)


def _lends(body: type) -> Callable[..., None]:
    def lends(data: Any) -> None:
        """Never called: see the module's docstring."""

    # The Struct forbids unknown fields; Litestar's schema of it does not say so.
    strict = Body(schema_extra={"additional_properties": False})
    lends.__annotations__ = {"data": Annotated[body, strict], "return": None}
    return lends


def documented(
    answer: type,
    *,
    status: int = 200,
    problems: Iterable[int] = SIGNED,
    body: type | None = None,
    conflict: str | None = None,
    not_modified: bool = False,
) -> dict[str, Any]:
    """Keyword arguments for a route decorator.

    `answer` is the success's shape (a Struct); a `LiveEvent` is one event of a stream of
    server-sent events. `not_modified`: the operation answers 304 to a matching `If-None-Match`.
    """
    statuses = set(problems) | (set(WITH_BODY) if body else set())
    if isinstance(answer, type) and issubclass(answer, LiveEvent):
        names = ", ".join(f"`{name}`" for name in event_names(answer))
        success = ResponseSpec(
            answer,
            media_type=EVENT_STREAM,
            description=f"Server-sent events (the schema is each event's): {names}.",
            generate_examples=False,
        )
    else:
        success = ResponseSpec(answer, description="The answer.", generate_examples=False)
    responses = {status: success} | {code: _problem(code, conflict) for code in sorted(statuses)}
    if not_modified:
        responses[304] = ResponseSpec(
            None, description="Not modified: the `If-None-Match` version is current."
        )
    kwargs: dict[str, Any] = {"responses": responses, "operation_class": DocumentedOperation}
    if body is not None:
        kwargs["dependencies"] = {"documented_body": Provide(_lends(body), sync_to_thread=False)}
    return kwargs
