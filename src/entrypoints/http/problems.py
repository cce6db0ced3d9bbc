"""Every error as application/problem+json (RFC 9457), mapped from its type in one place."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from application.access import Forbidden
from application.idempotency import IdempotencyKeyInProgress
from application.ports import ConcurrencyConflict, QueueUnavailable
from domain.errors import DomainError, LockTimeout, ValidationError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = "1"

STATUS_OF_CODE = {
    "VALIDATION_ERROR": 400,
    "FORBIDDEN": 403,
    "STORE_NOT_FOUND": 404,
    "NOT_FOUND": 404,
    "ALREADY_WAITING": 409,
    "WAITING_CLOSED": 409,
    "WAITING_PAUSED": 409,
    "QUEUE_FULL": 409,
    "INVALID_TRANSITION": 409,
    "POSTPONE_LIMIT": 409,
    "LOCK_TIMEOUT": 503,
    "IDEMPOTENCY_KEY_IN_PROGRESS": 409,
    "IDEMPOTENCY_KEY_REUSED": 422,
}

CODE_OF_STATUS = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "TOO_MANY_REQUESTS",
    503: "UNAVAILABLE",
}

# Litestar's words when the client hangs up while its body is being read.
CLIENT_GONE = "client disconnected prematurely"
CLIENT_CLOSED_REQUEST = 499

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": f"https://waitline.dev/problems/{code.lower().replace('_', '-')}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    if status in (429, 503):
        headers = {"Retry-After": RETRY_AFTER_SECONDS, **(headers or {})}
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def domain_error(_: Request[Any, Any, Any], error: DomainError) -> Response[dict[str, Any]]:
    status = STATUS_OF_CODE.get(error.code, 409)
    if isinstance(error, ValidationError):
        errors = [{"field": e.field, "message": e.message} for e in error.errors]
        return problem(status, error.code, error.detail, errors=errors)
    if isinstance(error, Forbidden):
        return problem(403, "FORBIDDEN", error.detail)
    if isinstance(error, LockTimeout):
        return problem(503, error.code, "the store is busy; retry shortly")
    if isinstance(error, IdempotencyKeyInProgress):
        return problem(status, error.code, error.detail, headers={"Retry-After": str(error.retry_after)})
    return problem(status, error.code, error.detail)


def validation_exception(_: Request[Any, Any, Any], error: ValidationException) -> Response[dict[str, Any]]:
    extra = error.extra if isinstance(error.extra, list) else []
    errors = [{"field": str(e.get("key", "")), "message": str(e.get("message", ""))} for e in extra]
    return problem(400, "VALIDATION_ERROR", str(error.detail), errors=errors)


def http_exception(_: Request[Any, Any, Any], error: HTTPException) -> Response[dict[str, Any]]:
    status = error.status_code
    if status == 500 and error.detail == CLIENT_GONE:
        # Nobody reads this answer and nothing failed on our side: nginx's 499, so that the
        # metrics and the access log do not count a client giving up as a server error.
        return problem(CLIENT_CLOSED_REQUEST, "ERROR", "the client went away before its request was read")
    headers = dict(error.headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="waitline"')
    code = CODE_OF_STATUS.get(status, "ERROR")
    return problem(status, code, str(error.detail), headers=headers, errors=[] if status == 400 else None)


def unavailable(_: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    log.warning("answered 503: %s", error)
    return problem(503, "UNAVAILABLE", "the service cannot take this right now; retry shortly")


def unexpected(request: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
    return problem(500, "INTERNAL_ERROR", "something went wrong on our side")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    DomainError: domain_error,
    ValidationException: validation_exception,
    HTTPException: http_exception,
    QueueUnavailable: unavailable,
    ConcurrencyConflict: unavailable,
    # The database refused or timed out (pool exhausted, disk, connection): retrying is the answer.
    SQLAlchemyError: unavailable,
    # A database that cannot be reached at all (refused, timed out) surfaces as the socket's error.
    OSError: unavailable,
    # Redis (the stores' lock) down or slow.
    RedisError: unavailable,
    Exception: unexpected,
}
