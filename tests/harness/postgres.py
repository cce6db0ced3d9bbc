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
import signal
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
    found = postgres_binaries()
    if found is None:
        raise RuntimeError(
            "no PostgreSQL answers at WAITLINE_TEST_POSTGRES or 127.0.0.1:5432, and no initdb to start one: "
            "install PostgreSQL (e.g. apt-get install postgresql) or point WAITLINE_TEST_POSTGRES at a server"
        )
    return found


def postgres_binaries() -> Path | None:
    """The folder of initdb and pg_ctl: on the PATH, else the newest under /usr/lib/postgresql."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major)
    return Path(candidates[-1]).parent if candidates else None


def _major(initdb: str) -> int:
    version = Path(initdb).parent.parent.name
    return int(version) if version.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _private_cluster() -> Iterator[str]:
    with PrivateCluster(_binaries()) as cluster:
        yield cluster.dsn


class PrivateCluster:
    """A PostgreSQL cluster of the test's own, in a fresh folder on a free port: one a test may stop
    (as a crash or an operator would) and start again on the same port and data, unlike the shared
    server, which fault tests must never touch.

    initdb refuses to run as root: as root, the cluster belongs to (and runs as) the postgres user.
    """

    def __init__(self, bin_dir: Path | None = None) -> None:
        found = bin_dir or postgres_binaries()
        if found is None:
            raise RuntimeError(
                "a private PostgreSQL cluster needs the server's binaries (initdb, pg_ctl), and none "
                "is installed: apt-get install postgresql"
            )
        self._bin = found
        self.port = _free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="waitline-pg-"))
        self._run_as: dict[str, Any] = {"user": "postgres"} if os.geteuid() == 0 else {}
        if self._run_as:
            shutil.chown(self.folder, "postgres")
        self.data = self.folder / "data"
        self._initialised, self._paused = False, False

    @property
    def dsn(self) -> str:
        """asyncpg's form: postgresql://postgres@127.0.0.1:PORT/postgres"""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def url(self) -> str:
        """SQLAlchemy's form, with the driver Waitline runs on."""
        return self.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)

    def start(self) -> None:
        """Start the server (made on first start) and return once it accepts connections."""
        if not self._initialised:
            self._pg("initdb", "-D", self.data, "--auth", "trust", "--username", "postgres")
            self._initialised = True
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        # The server outlives pg_ctl: its output goes to a log file, never to a pipe we would wait on.
        self._pg("pg_ctl", "-D", self.data, "-o", options, "-l", self.folder / "server.log", "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` ends every session (clients see it shutting down), `immediate`
        quits at once like a crash. Return once it is down."""
        self._pg("pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def pause(self) -> None:
        """Freeze the server and every session (SIGSTOP): connections stay open and answer nothing,
        like a host that hangs. `resume` thaws it."""
        self._paused = True
        postmaster = self._postmaster()
        os.kill(postmaster, signal.SIGSTOP)  # first, so that it forks no session we would miss
        for pid in _children(postmaster):
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        postmaster = self._postmaster()
        for pid in [*_children(postmaster), postmaster]:
            os.kill(pid, signal.SIGCONT)
        self._paused = False

    def _postmaster(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])

    def running(self) -> bool:
        status = [self._bin / "pg_ctl", "-D", self.data, "status"]
        return subprocess.run(status, capture_output=True, check=False, **self._run_as).returncode == 0

    def log(self) -> str:
        path = self.folder / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def remove(self) -> None:
        """Stop the server if it runs and delete its folder."""
        if self._paused:
            self.resume()
        if self._initialised and self.running():
            with contextlib.suppress(RuntimeError):
                self.stop("fast")
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PrivateCluster:
        try:
            self.start()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.remove()

    def _pg(self, program: str, *arguments: str | Path) -> None:
        # Never a pipe: the server pg_ctl starts would inherit it and keep it open.
        with tempfile.TemporaryFile() as said:
            done = subprocess.run(
                [self._bin / program, *arguments],
                stdin=subprocess.DEVNULL,
                stdout=said,
                stderr=subprocess.STDOUT,
                check=False,
                **self._run_as,
            )
            if done.returncode != 0:
                said.seek(0)
                output = said.read().decode(errors="replace")
                raise RuntimeError(
                    f"{program} {' '.join(map(str, arguments))} failed ({done.returncode}): {output}\n"
                    f"server log: {self.log()[-2000:]}"
                )


def _children(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # "pid (comm) state ppid ...": comm may hold spaces, so read after its closing ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == parent:
                found.append(int(stat.parent.name))
    return found


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


async def empty_database(url: str) -> None:
    async with emptied(url):
        pass
