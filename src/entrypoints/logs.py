"""Log lines of every process (the CLI, each API worker, the consumer) in one format."""

from __future__ import annotations

import asyncio
import logging
import re

# A guest's status token is their credential: an access log line shows where it was, not what.
_STATUS_TOKEN_IN_PATH = re.compile(r"(/guest/waitings/|/w/)[^/?#\s]+")


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Alembic names its implementation on every connection; the revisions it runs are enough.
    logging.getLogger("alembic.runtime.migration").addFilter(lambda record: "Running" in record.msg)
    logging.getLogger("uvicorn.error").addFilter(_not_cut_at_shutdown)
    logging.getLogger("uvicorn.access").addFilter(redact_status_tokens)


def _not_cut_at_shutdown(record: logging.LogRecord) -> bool:
    """Past the shutdown grace uvicorn cancels what is still open, live streams above all, and
    logs a traceback for each: the one line it says before ("Cancel N running task(s)") is enough.
    (Nothing else cancels a request's task; a client that leaves is a disconnect.)"""
    return not (record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError))


def redact_status_tokens(record: logging.LogRecord) -> bool:
    """uvicorn's access line carries the request's path among its arguments."""
    if isinstance(record.args, tuple):
        record.args = tuple(
            _STATUS_TOKEN_IN_PATH.sub(r"\1***", arg) if isinstance(arg, str) else arg for arg in record.args
        )
    return True
