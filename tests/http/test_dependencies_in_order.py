"""A handler's dependencies are resolved one after another: no anyio task group per request."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from litestar._kwargs import kwargs_model

from harness.httpkit import Api


async def test_a_registration_with_several_dependencies_spawns_no_task_group(
    api: Api, store: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused() -> None:
        raise AssertionError("a task group was spawned to resolve dependencies")

    monkeypatch.setattr(kwargs_model, "create_task_group", refused)
    joined = await api.join_v2(store["id"], "in-order")
    queued = await api.join_v3(store["id"], "queued")
    assert (joined.status_code, queued.status_code) == (201, 202), (joined.text, queued.text)


async def test_dependencies_in_order_still_refuse_a_missing_token(client: httpx.AsyncClient) -> None:
    answer = await client.post("/v2/stores/1/waitings", json={"partySize": 2})
    assert answer.status_code == 401
