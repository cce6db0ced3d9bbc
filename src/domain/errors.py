"""Rejections and domain errors, each a type with the code clients see."""

from __future__ import annotations

from dataclasses import dataclass


class DomainError(Exception):
    """A rule of the domain refused an operation."""

    code: str = "DOMAIN_ERROR"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.code)
        self.detail = detail or self.code


class StoreNotFound(DomainError):
    code = "STORE_NOT_FOUND"


class NotFound(DomainError):
    code = "NOT_FOUND"


class WaitingClosed(DomainError):
    code = "WAITING_CLOSED"


class WaitingPaused(DomainError):
    code = "WAITING_PAUSED"


class QueueFull(DomainError):
    code = "QUEUE_FULL"


class AlreadyWaiting(DomainError):
    code = "ALREADY_WAITING"


class InvalidTransition(DomainError):
    code = "INVALID_TRANSITION"


class PostponeLimit(DomainError):
    """The waiting has postponed as many times as its store allows."""

    code = "POSTPONE_LIMIT"


class LockTimeout(DomainError):
    """The store's lock was not acquired within its wait time."""

    code = "LOCK_TIMEOUT"


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class ValidationError(DomainError):
    code = "VALIDATION_ERROR"

    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.errors: list[FieldError] = errors or []

    @classmethod
    def of(cls, field_name: str, message: str) -> ValidationError:
        return cls(f"{field_name}: {message}", [FieldError(field_name, message)])
