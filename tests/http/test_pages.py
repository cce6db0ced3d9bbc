"""The tablet and guest pages as HTTP sees them (no browser; tests/browser drives them): served on
every profile with the right types and headers, every file they load is there and in the wheel,
and they stay out of the OpenAPI document."""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import re
import tomllib
from pathlib import Path

import httpx
import pytest

from entrypoints.http import pages
from entrypoints.logs import redact_status_tokens

# The pages do not depend on the database: once, embedded.
PROFILES = ("sqlite",)
ROOT = Path(__file__).parents[2]
HTML = "text/html; charset=utf-8"
TYPES = {".js": "text/javascript", ".css": "text/css"}


def _loaded_by(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="(/static/[^"]+)"', html)


def _imported_by(script: str) -> list[str]:
    return re.findall(r'^import[^"]*"\./([^"]+)"', script, flags=re.MULTILINE)


@pytest.mark.parametrize("path", ["/tablet", "/w/V76b5E102PuEsfDWr8aqNrke11Lm6paM", "/w/not-a-token"])
async def test_a_page_is_html_that_keeps_its_tokens_to_itself(client: httpx.AsyncClient, path: str):
    response = await client.get(path)

    assert response.status_code == 200
    assert response.headers["content-type"] == HTML
    assert response.headers["referrer-policy"] == "no-referrer"
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "connect-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert response.text.startswith("<!doctype html>")
    assert '<meta name="viewport"' in response.text


async def test_the_tablet_needs_no_token_to_load_and_sends_none(client: httpx.AsyncClient):
    # The store's token rides in the fragment, which a browser never sends: the page is public.
    page = (await client.get("/tablet")).text

    assert '<script type="module" src="/static/tablet.js">' in page
    assert "token" not in page.lower()


@pytest.mark.parametrize("page", ["/tablet", "/w/some-token"])
async def test_every_file_a_page_loads_is_served_with_its_type(client: httpx.AsyncClient, page: str):
    html = (await client.get(page)).text
    pending, seen = _loaded_by(html), set()
    assert pending, "the page loads nothing"
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        response = await client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith(TYPES[Path(path).suffix]), path
        if path.endswith(".js"):
            folder = path.rsplit("/", 1)[0]
            pending += [f"{folder}/{name}" for name in _imported_by(response.text)]
    assert {"/static/pages.css", "/static/live.js", "/static/texts.js"} <= seen
    if page == "/tablet":
        assert "/static/vendor/qrcode-generator.js" in seen


async def test_a_missing_file_is_a_404(client: httpx.AsyncClient):
    response = await client.get("/static/nothing-here.js")
    assert response.status_code == 404


async def test_the_pages_are_not_in_the_openapi_document(client: httpx.AsyncClient):
    paths = (await client.get("/schema/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith(("/tablet", "/w/", "/static"))]


def test_every_page_file_is_in_the_wheel():
    """An installed wheel has only what [tool.setuptools.package-data] names."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["entrypoints.http"]
    package = ROOT / "src" / "entrypoints" / "http"
    files = [path.relative_to(package).as_posix() for path in pages.WEB.rglob("*") if path.is_file()]
    assert {"web/tablet.html", "web/guest.html", "web/static/tablet.js", "web/static/guest.js"} <= set(files)
    missing = [name for name in files if not any(fnmatch.fnmatch(name, p) for p in patterns)]
    assert not missing, f"not in package-data: {missing}"


def test_the_vendored_qr_generator_is_the_release_its_licence_names():
    vendor = pages.STATIC / "vendor"
    note = (vendor / "qrcode-generator.LICENSE").read_text()
    digest = hashlib.sha256((vendor / "qrcode-generator.js").read_bytes()).hexdigest()
    assert f"sha256 of the file {digest}" in note
    assert "Permission is hereby granted, free of charge" in note


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("/guest/waitings/V76b5E102PuEsfDWr8aqNrke11Lm6paM", "/guest/waitings/***"),
        ("/guest/waitings/V76b5E102PuEsfDWr8aqNrke11Lm6paM/events", "/guest/waitings/***/events"),
        ("/w/V76b5E102PuEsfDWr8aqNrke11Lm6paM", "/w/***"),
        ("/w/V76b5E102PuEsfDWr8aqNrke11Lm6paM?lang=en", "/w/***?lang=en"),
        ("/stores/1/waitings", "/stores/1/waitings"),
    ],
)
def test_the_access_log_shows_no_status_token(path: str, shown: str):
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", path, "1.1", 200), None,
    )  # fmt: skip

    assert redact_status_tokens(record)

    assert record.getMessage() == f'127.0.0.1:5000 - "GET {shown} HTTP/1.1" 200'
