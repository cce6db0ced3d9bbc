"""The store's tablet page and the guest's page: plain HTML, CSS and JavaScript served by the app.

The pages talk to the API like any client (the store's token travels in the tablet's URL
fragment, the guest's status token in the path), so nothing here reads or changes a waiting.
They are left out of the OpenAPI document: they are for people, not for generated clients.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Controller, MediaType, Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

WEB = Path(__file__).parent / "web"
STATIC = WEB / "static"
STATIC_PATH = "/static"
# Everything a page loads comes from here; the tokens in its URL are never sent elsewhere.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
# Read once: they are small, and a request never waits on the disk for them.
_PAGES = {name: (WEB / f"{name}.html").read_bytes() for name in ("tablet", "guest")}


def _page(name: str) -> Response[bytes]:
    return Response(_PAGES[name], media_type=MediaType.HTML, headers=HEADERS)


class PagesController(Controller):
    include_in_schema = False

    @get("/tablet")
    async def tablet(self) -> Response[bytes]:
        """The store's staff run the day's list here; the token is read from `#token=…`."""
        return _page("tablet")

    @get("/w/{statusToken:str}")
    async def guest(self) -> Response[bytes]:
        """A guest follows their place. Any token gets the page, which asks the API about it and
        says so in words when the link is unknown or malformed (a person, not a client, reads it)."""
        return _page("guest")


def static_files() -> Router:
    """The pages' scripts, styles and the vendored QR code generator (revalidated on each load)."""
    return create_static_files_router(
        path=STATIC_PATH,
        directories=[STATIC],
        name="pages-static",
        cache_control=CacheControlHeader(no_cache=True),
        include_in_schema=False,
    )
