"""Telling a server that is down or overloaded (the database, Redis) from one that refused what we asked."""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError as RedisResponseError
from redis.exceptions import TimeoutError as RedisTimeout
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# SQLSTATE classes: connection exception, transaction rollback (serialization failure, deadlock),
# insufficient resources, operator intervention (a cancelled statement, a server shutting down).
TRANSIENT_CLASSES = ("08", "40", "53", "57")
# Redis refusing because of its own state (a failover, loading, out of memory, a busy script).
REDIS_STATES = ("READONLY", "LOADING", "MASTERDOWN", "OOM", "BUSY", "TRYAGAIN", "CLUSTERDOWN")


def unavailable(error: BaseException) -> bool:
    """True when retrying later is the whole answer: nothing about the request itself was wrong."""
    if isinstance(error, OSError | PoolTimeout):  # refused, unreachable, timed out, pool exhausted
        return True
    if isinstance(error, RedisConnectionError | RedisTimeout):  # the stores' lock is out of reach
        return True
    if isinstance(error, RedisResponseError) and str(error).startswith(REDIS_STATES):
        return True
    if isinstance(error, OperationalError):  # SQLite: locked, disk I/O
        return True
    if isinstance(error, DBAPIError):
        state = str(getattr(error.orig, "sqlstate", "") or "")
        return error.connection_invalidated or state.startswith(TRANSIENT_CLASSES)
    return False
