"""A client generated from /schema/openapi.json (openapi-python-client) works as a partner team
would use it: an admin creates a store, a customer registers and reads their waiting, and a
refusal arrives as the document's Problem with its code."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from subprocess import PIPE, STDOUT
from types import ModuleType
from typing import Any

import httpx
import pytest

from harness.httpkit import Tokens

PROFILES = ("sqlite",)
PACKAGE = "waitline_client"
GENERATOR = Path(sys.executable).parent / "openapi-python-client"


@pytest.fixture
async def generated(client: httpx.AsyncClient, tmp_path: Path) -> AsyncIterator[ModuleType]:
    document = tmp_path / "openapi.json"
    document.write_bytes((await client.get("/schema/openapi.json")).content)
    config = tmp_path / "config.yaml"
    config.write_text("post_hooks: []\n")  # no formatter run: the code only has to import
    command = [str(GENERATOR), "generate", "--path", str(document), "--meta", "none"]
    command += ["--output-path", str(tmp_path / PACKAGE), "--config", str(config)]
    process = await asyncio.create_subprocess_exec(*command, stdout=PIPE, stderr=STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, output.decode()
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def _api(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.api.{name}")


async def test_a_generated_client_creates_registers_and_reads(
    generated: ModuleType, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    models = importlib.import_module(f"{PACKAGE}.models")
    api = generated.Client(base_url=str(client.base_url), raise_on_unexpected_status=True)
    api.set_async_httpx_client(client)

    client.headers.update(tokens.admin)
    store = await _api("stores.store_create").asyncio(
        client=api, body=models.NewStoreBody(name="Cafe Onion", waiting_open=True, avg_service_minutes=5)
    )
    assert isinstance(store, models.Store) and store.waiting_open

    client.headers.update(tokens.customer("c1"))
    register = _api("register_v2_under_the_stores_lock.register_now_customer")
    joined = await register.asyncio_detailed(store.id, client=api, body=models.CustomerJoin(party_size=2))
    assert joined.status_code == 201 and isinstance(joined.parsed, models.Waiting)
    waiting = await _api("waitings.waiting_show").asyncio(joined.parsed.id, client=api)
    assert isinstance(waiting, models.Waiting)
    assert (waiting.status, waiting.rank, waiting.party_size) == (models.WaitingStatus.WAITING, 1, 2)

    again = await register.asyncio_detailed(store.id, client=api, body=models.CustomerJoin(party_size=2))
    assert again.status_code == 409 and isinstance(again.parsed, models.Problem)
    assert again.parsed.code is models.ProblemCode.ALREADY_WAITING
