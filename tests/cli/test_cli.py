"""The `waitline` command: token, migrate, and serve as a new user runs it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
import pytest

from adapters.persistence import schema
from adapters.persistence.engine import make_engine
from entrypoints.cli import main
from entrypoints.settings import Settings
from harness.postgres import run_apart


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WAITLINE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("WAITLINE_JWT_SECRET", raising=False)
    monkeypatch.delenv("WAITLINE_DATABASE_URL", raising=False)
    return tmp_path


def test_token_is_signed_with_the_secret_made_on_first_use(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["token", "--role", "store", "--sub", "tablet", "--store-id", "7"]) == 0
    token = capsys.readouterr().out.strip()
    secret = (data_dir / "jwt-secret").read_text().strip()
    claims = jwt.decode(token, secret, algorithms=["HS256"])
    assert (claims["role"], claims["sub"], claims["storeId"]) == ("store", "tablet", 7)
    assert claims["exp"] > time.time()
    assert (data_dir / "jwt-secret").stat().st_mode & 0o077 == 0


def test_a_store_token_needs_its_store(data_dir: Path) -> None:
    assert main(["token", "--role", "store", "--sub", "tablet"]) == 2


def _tablet_link(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[str, dict[str, object]]:
    """What `token --link` printed: the URL before the fragment, and the token's claims."""
    assert main(["token", "--role", "store", "--sub", "tablet", "--store-id", "7", "--link", *extra]) == 0
    url, _, token = capsys.readouterr().out.strip().partition("#token=")
    return url, jwt.decode(token, Settings().secret(), algorithms=["HS256"])


def test_a_store_token_as_the_tablet_pages_link(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WAITLINE_HOST", raising=False)
    monkeypatch.delenv("WAITLINE_PORT", raising=False)

    url, claims = _tablet_link(capsys)

    assert url == "http://127.0.0.1:8000/tablet"
    assert (claims["role"], claims["storeId"]) == ("store", 7)


def test_the_tablet_link_points_where_the_service_listens(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAITLINE_HOST", "0.0.0.0")
    monkeypatch.setenv("WAITLINE_PORT", "9000")
    assert _tablet_link(capsys)[0] == "http://127.0.0.1:9000/tablet"
    monkeypatch.setenv("WAITLINE_HOST", "::1")
    assert _tablet_link(capsys)[0] == "http://[::1]:9000/tablet"
    assert _tablet_link(capsys, "--base-url", "https://wait.example/")[0] == "https://wait.example/tablet"


def test_only_a_store_token_has_a_tablet_link(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "--role", "admin", "--sub", "ops", "--link"]) == 2
    assert "--role store" in capsys.readouterr().err


def test_migrate_creates_the_database(data_dir: Path) -> None:
    assert main(["migrate"]) == 0
    assert (data_dir / "waitline.db").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_and_shuts_down_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "WAITLINE_DATA_DIR": str(tmp_path), "WAITLINE_LOG_LEVEL": "INFO"}
    env.pop("WAITLINE_JWT_SECRET", None)
    command = [sys.executable, "-m", "entrypoints", "serve", "--port", str(port)]
    server = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        ready = _poll(f"http://127.0.0.1:{port}/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["dependencies"]["database"]["status"] == "UP"
    finally:
        server.send_signal(signal.SIGTERM)
        _, log = server.communicate(timeout=30)
    # uvicorn re-raises the signal after a graceful shutdown, so the exit status names it.
    assert server.returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in log
    assert "Traceback" not in log
    assert (tmp_path / "jwt-secret").exists()


def _poll(url: str) -> httpx.Response:
    deadline = time.monotonic() + 30
    while True:
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_kafka_without_a_shared_database_and_redis_stops_it_from_starting(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The consumers run elsewhere: an API on its own SQLite file and lock would not see their work.
    monkeypatch.setenv("WAITLINE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    assert main(["migrate"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "WAITLINE_KAFKA_BOOTSTRAP needs WAITLINE_DATABASE_URL and WAITLINE_REDIS_URL" in line


def test_a_redis_url_that_is_not_one_is_one_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WAITLINE_REDIS_URL", "http://127.0.0.1:6379")
    assert main(["migrate"]) == 2
    assert "WAITLINE_REDIS_URL: Value error, expected redis://" in _one_line(capsys.readouterr().err)


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("mysql://root@127.0.0.1/test", "WAITLINE_DATABASE_URL: Value error, 'mysql' is not supported"),
        ("postgresql+psycopg2://postgres@127.0.0.1/test", "'postgresql+psycopg2' is not supported"),
        ("not a url", "WAITLINE_DATABASE_URL: Value error, not a database URL"),
    ],
)
def test_a_database_url_this_version_cannot_use_is_one_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str, said: str
) -> None:
    monkeypatch.setenv("WAITLINE_DATABASE_URL", url)
    assert main(["migrate"]) == 2
    assert said in _one_line(capsys.readouterr().err)


def test_an_unreachable_database_is_one_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WAITLINE_DATABASE_URL", f"postgresql://postgres:secret@127.0.0.1:{_free_port()}/none")
    monkeypatch.setenv("WAITLINE_DB_CONNECT_TIMEOUT", "2")
    for command in (["migrate"], ["serve"]):
        assert main(command) == 1
        line = _one_line(capsys.readouterr().err)
        assert "cannot use the database at postgresql+asyncpg://postgres:***@127.0.0.1:" in line
        assert "secret" not in line


def test_a_missing_database_or_role_is_one_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], postgres_url: str
) -> None:
    server = postgres_url.rsplit("/", 1)[0]
    for url, said in (
        (f"{server}/waitline_no_such_database", 'database "waitline_no_such_database" does not exist'),
        (server.replace("postgres@", "waitline_no_such_role@") + "/postgres", 'role "waitline_no_such_role"'),
    ):
        monkeypatch.setenv("WAITLINE_DATABASE_URL", url)
        assert main(["migrate"]) == 1
        assert said in _one_line(capsys.readouterr().err)


def test_serve_refuses_a_schema_that_is_behind_and_migrate_brings_it_up(
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    postgres_server_database: str,
) -> None:

    async def to(target: str) -> None:
        engine = make_engine(postgres_server_database)
        try:
            await (schema.downgrade(engine, target) if target != "head" else schema.upgrade(engine))
        finally:
            await engine.dispose()

    monkeypatch.setenv("WAITLINE_DATABASE_URL", postgres_server_database)
    run_apart(to("head"))
    run_apart(to("0001"))
    try:
        assert main(["serve"]) == 1
        line = _one_line(capsys.readouterr().err)
        assert "schema (0001) is behind this version" in line and "run `waitline migrate`" in line
        assert main(["migrate"]) == 0
        assert f"schema up to date ({schema.head()})" in capsys.readouterr().out
    finally:
        run_apart(to("head"))


def test_an_unreachable_redis_is_one_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WAITLINE_REDIS_URL", f"redis://:secret@127.0.0.1:{_free_port()}/0")
    assert main(["serve"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "cannot use Redis at redis://:***@127.0.0.1:" in line and "secret" not in line


def test_settings_come_from_a_dotenv_file_and_the_environment_wins(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(data_dir)
    (data_dir / ".env").write_text(
        "WAITLINE_PORT=9000\nWAITLINE_LOCK_WAIT_SECONDS=2\nCOMPOSE_PROJECT_NAME=not-ours\n"
    )
    monkeypatch.delenv("WAITLINE_PORT", raising=False)
    monkeypatch.setenv("WAITLINE_LOCK_WAIT_SECONDS", "3")

    settings = Settings()

    assert (settings.port, settings.lock_wait_seconds) == (9000, 3.0)


def test_a_mistyped_url_in_the_dotenv_file_is_one_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(data_dir)
    (data_dir / ".env").write_text("WAITLINE_DATABASE_URL=postgress://postgres@127.0.0.1/waitline\n")
    assert main(["serve"]) == 2
    assert "WAITLINE_DATABASE_URL: Value error, 'postgress' is not supported" in _one_line(
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("variable", "value", "status", "said"),
    [
        ("WAITLINE_DATABASE_URL", "mysql://root@127.0.0.1/test", 2, "'mysql' is not supported"),
        ("WAITLINE_REDIS_URL", "redis://127.0.0.1:{port}/0", 1, "cannot use Redis at redis://127.0.0.1:"),
    ],
)
def test_serve_that_cannot_start_says_why_in_one_line(
    tmp_path: Path, variable: str, value: str, status: int, said: str
) -> None:
    """As a user sees it: the process's own stderr, with logging set up and nothing captured."""
    env = {**os.environ, "WAITLINE_DATA_DIR": str(tmp_path), variable: value.format(port=_free_port())}
    command = [sys.executable, "-m", "entrypoints", "serve", "--workers", "1"]
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == status
    assert said in _one_line(done.stderr)


@pytest.mark.parametrize("shared", [{}, {"WAITLINE_DATABASE_URL": "postgresql://postgres@127.0.0.1/x"}])
def test_several_workers_need_the_database_and_redis(
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    shared: dict[str, str],
) -> None:
    # The embedded lock is in-process: two workers would each let a registration of one store in.
    monkeypatch.delenv("WAITLINE_REDIS_URL", raising=False)
    for name, value in shared.items():
        monkeypatch.setenv(name, value)
    assert main(["serve", "--workers", "2"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "--workers 2 needs WAITLINE_DATABASE_URL and WAITLINE_REDIS_URL" in line
    monkeypatch.setenv("WAITLINE_WORKERS", "3")
    assert main(["serve"]) == 2
    assert "--workers 3 needs" in _one_line(capsys.readouterr().err)
