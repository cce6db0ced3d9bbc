"""Log lines of every process (the CLI, each API worker, the consumer) in one format."""

from __future__ import annotations

import asyncio
import logging


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Alembic names its implementation on every connection; the revisions it runs are enough.
    logging.getLogger("alembic.runtime.migration").addFilter(lambda record: "Running" in record.msg)
    logging.getLogger("uvicorn.error").addFilter(_not_cut_at_shutdown)


def _not_cut_at_shutdown(record: logging.LogRecord) -> bool:
    """Past the shutdown grace uvicorn cancels what is still open, live streams above all, and
    logs a traceback for each: the one line it says before ("Cancel N running task(s)") is enough.
    (Nothing else cancels a request's task; a client that leaves is a disconnect.)"""
    return not (record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError))
