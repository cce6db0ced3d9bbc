"""Telling a server that is down or overloaded (the database, Redis) from one that refused what we asked."""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeout
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# SQLSTATE classes: connection exception, insufficient resources, operator intervention (a
# cancelled statement, a server shutting down).
TRANSIENT_CLASSES = ("08", "53", "57")


def unavailable(error: BaseException) -> bool:
    """True when retrying later is the whole answer: nothing about the request itself was wrong."""
    if isinstance(error, OSError | PoolTimeout):  # refused, unreachable, timed out, pool exhausted
        return True
    if isinstance(error, RedisConnectionError | RedisTimeout):  # the stores' lock is out of reach
        return True
    if isinstance(error, OperationalError):  # SQLite: locked, disk I/O
        return True
    if isinstance(error, DBAPIError):
        state = str(getattr(error.orig, "sqlstate", "") or "")
        return error.connection_invalidated or state.startswith(TRANSIENT_CLASSES)
    return False
