"""`computed_once`: functools.cached_property without its lock.

On Python 3.11 every first read of a cached_property takes a lock (3.12 dropped it); the worker
reads a customer and its key once per registration, a thousand per batch, and the lock was
most of their cost. Values of frozen dataclasses only, worked out from their own fields: two
tasks computing one at once get the same value, so nothing needs the lock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Self, TypeVar, overload

T = TypeVar("T")


class computed_once(Generic[T]):
    def __init__(self, compute: Callable[[Any], T]) -> None:
        self._compute = compute
        self._name = compute.__name__
        self.__doc__ = compute.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, instance: None, owner: type) -> Self: ...

    @overload
    def __get__(self, instance: object, owner: type) -> T: ...

    def __get__(self, instance: object | None, owner: type) -> T | Self:
        if instance is None:
            return self
        # Kept in the instance's own dict, which then answers every later read (a non-data
        # descriptor gives way to it), as cached_property does; a frozen dataclass allows it.
        value: T = self._compute(instance)
        instance.__dict__[self._name] = value
        return value
