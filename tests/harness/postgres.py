"""A PostgreSQL server for the tests: the one at WAITLINE_TEST_POSTGRES (default 127.0.0.1:5432),
or, if none answers, a private cluster started from the PostgreSQL binaries on this machine.
Each test session gets its own database, dropped at the end. No server at all fails loudly.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.persistence.engine import Limits, make_engine
from adapters.persistence.tables import metadata

T = TypeVar("T")
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def run_apart(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run on a loop of its own: the fixtures are set up while the tests' loop may be running."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _reachable(dsn: str) -> bool:
    async def probe() -> bool:
        try:
            connection = await asyncpg.connect(dsn, timeout=3)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return False
        await connection.close()
        return True

    return run_apart(probe())


def _binaries() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not candidates:
        raise RuntimeError(
            "no PostgreSQL answers at WAITLINE_TEST_POSTGRES or 127.0.0.1:5432, and no initdb to start one: "
            "install PostgreSQL (e.g. apt-get install postgresql) or point WAITLINE_TEST_POSTGRES at a server"
        )
    return Path(candidates[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _private_cluster() -> Iterator[str]:
    bin_dir, folder, port = _binaries(), Path(tempfile.mkdtemp(prefix="waitline-pg-")), _free_port()
    user = ["--username", "postgres"]
    run_as = {"user": "postgres"} if os.geteuid() == 0 else {}
    if run_as:
        shutil.chown(folder, "postgres")
    data = folder / "data"
    subprocess.run(
        [bin_dir / "initdb", "-D", data, "--auth", "trust", *user], check=True, capture_output=True, **run_as
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    # The server outlives pg_ctl: its output goes to a log file, never to a pipe we would wait on.
    start = [bin_dir / "pg_ctl", "-D", data, "-o", options, "-l", folder / "server.log", "-w", "start"]
    subprocess.run(start, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **run_as)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        stop = [bin_dir / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop"]
        subprocess.run(stop, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **run_as)
        shutil.rmtree(folder, ignore_errors=True)


async def _admin(dsn: str, statement: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty database for this test session, as a SQLAlchemy asyncpg URL."""
    dsn = os.environ.get("WAITLINE_TEST_POSTGRES", DEFAULT_DSN)
    with _server(dsn) as server:
        name = f"waitline_test_{uuid.uuid4().hex[:12]}"
        run_apart(_admin(server, f'CREATE DATABASE "{name}"'))
        try:
            base = server.rsplit("/", 1)[0]
            yield f"{base}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)
        finally:
            run_apart(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def _server(dsn: str) -> Iterator[str]:
    if _reachable(dsn):
        yield dsn
        return
    with _private_cluster() as private:
        yield private


async def empty(engine: AsyncEngine) -> None:
    """Every table of the schema emptied and its ids restarted: a fresh database, in milliseconds."""
    names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@contextlib.asynccontextmanager
async def emptied(url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the session's database, emptied first. (Fixtures parametrised by store enter this:
    pytest-asyncio cannot hand them an async fixture by name.)"""
    engine = make_engine(url, Limits(pool_size=4))
    try:
        await empty(engine)
        yield engine
    finally:
        await engine.dispose()
