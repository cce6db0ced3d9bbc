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

from entrypoints.cli import main


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


def test_settings_this_version_cannot_honour_stop_it_from_starting(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Several replicas on one database with in-process locks would race: refuse, do not ignore.
    monkeypatch.setenv("WAITLINE_REDIS_URL", "redis://127.0.0.1:6379/0")
    assert main(["migrate"]) == 2
    assert "WAITLINE_REDIS_URL" in capsys.readouterr().err
