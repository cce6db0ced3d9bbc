"""Operations: health for load balancers, Prometheus metrics, and the OpenAPI document."""

from __future__ import annotations

import re

from prometheus_client import CONTENT_TYPE_LATEST

from harness.httpkit import Api


async def test_live_says_the_process_is_up(client):
    response = await client.get("/health/live")
    assert response.status_code == 200
    assert response.json()["status"] == "UP"


async def test_ready_reports_each_dependency(client):
    response = await client.get("/health/ready")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "UP"
    assert body["dependencies"]["database"]["status"] == "UP"
    assert body["dependencies"]["queue"]["status"] == "UP"


async def test_ready_is_503_with_detail_while_the_queue_is_down(client, container):
    queue = container.queue()
    await queue.stop()
    try:
        response = await client.get("/health/ready")
    finally:
        await queue.start(container.process())

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "DOWN"
    assert body["dependencies"]["queue"]["status"] == "DOWN"
    assert body["dependencies"]["queue"]["detail"]
    assert body["dependencies"]["database"]["status"] == "UP"
    assert (await client.get("/health/ready")).status_code == 200


async def test_metrics_are_prometheus_text_counting_requests(client, store, api: Api):
    await api.join_v2(store["id"], "a")
    await api.join_v2(store["id"], "a")  # a 409, counted under its own status

    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST  # one charset: Prometheus 3 parses it
    text = response.text
    assert "# TYPE waitline_http_requests_total counter" in text
    assert re.search(r'waitline_http_requests_total\{method="POST",route="[^"]*",status="201"\} [1-9]', text)
    assert re.search(r'waitline_http_requests_total\{method="POST",route="[^"]*",status="409"\} 1\.0', text)
    assert "waitline_http_request_seconds_bucket" in text
    assert re.search(r"^waitline_queue_depth \d", text, re.MULTILINE)
    # Every sample line parses as `name{labels} value`.
    for line in text.splitlines():
        if line and not line.startswith("#"):
            assert re.fullmatch(r"[a-zA-Z_:][\w:]*(\{.*\})? [-+0-9.eE]+|.* (NaN|[+-]Inf)", line), line


async def test_unmatched_paths_do_not_make_a_metric_per_path(client):
    # A label per raw path would let anyone grow the metrics without bound.
    for i in range(3):
        await client.get(f"/no-such-path-{i}")
    text = (await client.get("/metrics")).text
    assert "no-such-path" not in text


async def test_the_openapi_document_describes_the_contract(client):
    response = await client.get("/schema/openapi.json")

    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    paths = {re.sub(r"\{[^}]+\}", "{}", path) for path in document["paths"]}
    expected = {
        "/stores",
        "/stores/{}",
        "/stores/{}/waiting/open",
        "/stores/{}/waiting/close",
        "/stores/{}/waitings",
        "/stores/{}/waitings/{}/call",
        "/stores/{}/waitings/{}/seat",
        "/stores/{}/waitings/{}/no-show",
        "/stores/{}/waitings/{}/cancel",
        "/stores/{}/events",
        "/v2/stores/{}/waitings",
        "/v2/app/stores/{}/waitings",
        "/v3/stores/{}/waitings",
        "/v3/app/stores/{}/waitings",
        "/v3/waiting-requests/{}",
        "/v3/waiting-requests/{}/events",
        "/waitings/{}",
        "/waitings/{}/cancel",
        "/waitings/{}/events",
        "/guest/waitings/{}",
        "/guest/waitings/{}/events",
        "/guest/waitings/{}/cancel",
        "/health/live",
        "/health/ready",
        "/metrics",
    }
    assert expected <= paths, expected - paths
    assert "BearerToken" in document["components"]["securitySchemes"]


async def test_the_schema_is_served_at_schema(client):
    response = await client.get("/schema")
    assert response.status_code == 200
