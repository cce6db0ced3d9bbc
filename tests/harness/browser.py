"""Plumbing for the browser tests: the server they run against, and the stores they make."""

from __future__ import annotations

import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from harness.httpkit import SECRET, Tokens


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    base: str
    port: int
    env: dict[str, str]
    log: Path

    def said(self) -> str:
        return self.log.read_text(errors="replace")


class Shop:
    """Stores made through the API, and the links their tablets are opened with."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.tokens = Tokens(SECRET)
        self.http = httpx.Client(base_url=server.base, timeout=10)

    def store(self, **fields: Any) -> dict[str, Any]:
        body = {"name": "Gamja Tang 감자탕", "waitingOpen": True, "avgServiceMinutes": 5, **fields}
        response = self.http.post("/stores", json=body, headers=self.tokens.admin)
        assert response.status_code == 201, response.text
        store: dict[str, Any] = response.json()
        return store

    def tablet_link(self, store_id: int, *extra: str) -> str:
        """What `waitline token --role store --store-id N --link` prints."""
        command = [sys.executable, "-m", "entrypoints", "token", "--role", "store", "--sub", "tablet"]
        done = subprocess.run(
            [*command, "--store-id", str(store_id), "--link", *extra],
            env=self.server.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    def join(self, store_id: int, name: str, phone: str, party: int = 2) -> dict[str, Any]:
        """A guest registered at the tablet, through the API (not the page)."""
        response = self.http.post(
            f"/v2/app/stores/{store_id}/waitings",
            json={"name": name, "phoneNumber": phone, "partySize": party},
            headers=self.tokens.store(store_id),
        )
        assert response.status_code == 201, response.text
        waiting: dict[str, Any] = response.json()
        return waiting

    def move(self, store_id: int, waiting_id: int, action: str) -> None:
        response = self.http.post(
            f"/stores/{store_id}/waitings/{waiting_id}/{action}", headers=self.tokens.store(store_id)
        )
        assert response.status_code == 200, response.text

    def offers(self, method: str, path: str) -> bool:
        paths = self.http.get("/schema/openapi.json").json()["paths"]
        return method.lower() in paths.get(path, {})
