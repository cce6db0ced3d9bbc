"""What a queue's worker is given: the handler that decides a batch, and whom to tell of dead letters."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from application.requests import RegistrationRequest

Handler = Callable[[Sequence[RegistrationRequest]], Awaitable[object]]
GiveUp = Callable[[Sequence[RegistrationRequest], str], Awaitable[None]]
"""Told of requests set aside as dead letters, and why (API.md's error types)."""

PARSING_ERROR, PROCESSING_ERROR = "PARSING_ERROR", "PROCESSING_ERROR"


async def tell_nobody(requests: Sequence[RegistrationRequest], reason: str) -> None:
    return None
