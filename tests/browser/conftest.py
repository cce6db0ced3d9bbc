"""Browser fixtures: a real `waitline serve` (embedded profile) on a free port, Debian's Chromium
driven by Playwright, a tablet and a phone, and the stores the tests run.

Chromium is never downloaded (`playwright install` cannot reach its servers here): the tests use
the system's, `/usr/bin/chromium` (`apt-get install -y chromium`; `.ci/run` does) or
WAITLINE_TEST_CHROMIUM. Without one they are skipped, and say so in a warning and in a banner at
the end of the run; with WAITLINE_REQUIRE_BROWSER=1 they fail instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.browser import Server, Shop, free_port
from harness.httpkit import SECRET

CHROMIUM = Path(os.environ.get("WAITLINE_TEST_CHROMIUM", "/usr/bin/chromium"))
# As the machine notes say: without these, headless Chromium reaches for Google's servers.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ROOT = Path(__file__).parents[2]
SCREENSHOTS = Path(os.environ.get("WAITLINE_SCREENSHOTS", ROOT / "test-artefacts" / "screenshots"))
TABLET = {"width": 1180, "height": 820}
PHONE = {"width": 390, "height": 844}
_skipped: list[str] = []


def _no_browser(reason: str) -> None:
    message = f"BROWSER TESTS SKIPPED: {reason}. Install it: apt-get install -y chromium (.ci/run does)"
    if os.environ.get("WAITLINE_REQUIRE_BROWSER") == "1":
        pytest.fail(message, pytrace=False)
    if not _skipped:
        warnings.warn(pytest.PytestWarning(message), stacklevel=1)
        _skipped.append(message)
    pytest.skip(message)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for message in _skipped:
        terminalreporter.write_sep("!", message, red=True, bold=True)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`waitline serve` as a user starts it, embedded: SQLite in its own folder, its own port."""
    folder = tmp_path_factory.mktemp("browser-server")
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("WAITLINE_") or key.startswith("WAITLINE_TEST")
    }
    env |= {
        "WAITLINE_DATA_DIR": str(folder / "data"),
        "WAITLINE_JWT_SECRET": SECRET,
        "WAITLINE_HOST": "127.0.0.1",
        "WAITLINE_PORT": str(port),
        "WAITLINE_SHUTDOWN_GRACE_SECONDS": "1",
    }
    log = folder / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "entrypoints", "serve"],
            cwd=folder,  # no .env of the repository's
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    running = Server(f"http://127.0.0.1:{port}", port, env, log)
    try:
        _wait_ready(running, process)
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(server: Server, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, f"waitline serve stopped: {server.said()}"
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{server.base}/health/ready", timeout=2).status_code == 200:
                return
        assert time.monotonic() < deadline, f"waitline serve not ready: {server.said()}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Per module: while Playwright's sync API is started, its event loop counts as running in
    this thread, and the asyncio tests of the other folders cannot start theirs."""
    if not CHROMIUM.exists():
        _no_browser(f"no Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:  # pragma: no cover - the dev extras install it
        _no_browser(f"Playwright is not installed ({error})")
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
    except Exception as error:
        playwright.stop()
        _no_browser(f"Chromium at {CHROMIUM} does not start ({error})")
    try:
        yield chromium
    finally:
        chromium.close()
        playwright.stop()


@pytest.fixture(autouse=True)
def _patient_expectations(browser: Any) -> None:
    from playwright.sync_api import expect

    # Two cores shared with a server: allow a live update more than the default 5 s.
    expect.set_options(timeout=15_000)


class Errors(list[str]):
    """What the pages threw or refused (a CSP violation, a failed script): a test fails on any."""


def _network_noise(text: str) -> bool:
    """Chromium's own lines for a refused answer or a cut connection, which the tests cause."""
    return "Failed to load resource" in text or "net::ERR_" in text


@pytest.fixture
def page_errors() -> Iterator[Errors]:
    errors = Errors()
    yield errors
    assert not errors, f"the pages reported errors: {errors}"


def _watched(context: Any, errors: Errors) -> Any:
    def watch(page: Any) -> None:
        page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
        page.on(
            "console",
            lambda message: (
                errors.append(f"{page.url}: {message.text}")
                if message.type == "error" and not _network_noise(message.text)
                else None
            ),
        )

    context.on("page", watch)
    return context


@pytest.fixture
def tablet(browser: Any, page_errors: Errors) -> Iterator[Any]:
    """The store's tablet at the door, in English."""
    context = _watched(browser.new_context(locale="en-US", viewport=TABLET), page_errors)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def phone(browser: Any, page_errors: Errors) -> Iterator[Any]:
    """A guest's phone, in Korean."""
    context = _watched(
        browser.new_context(
            locale="ko-KR", viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
        ),
        page_errors,
    )
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def shop(server: Server) -> Iterator[Shop]:
    shop = Shop(server)
    try:
        yield shop
    finally:
        shop.http.close()


@pytest.fixture
def screenshot() -> Any:
    """Saves a page's picture as a test artefact (the README shows copies in docs/screenshots)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True, animations="disabled", caret="hide")
        return path

    return take
