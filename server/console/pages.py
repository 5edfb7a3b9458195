"""Rendering pages: the template context every page shares, errors as pages, security headers.

Every console answer gets a Content-Security-Policy that allows our own origin only (scripts,
styles, images, media, fetches), ``data:`` images, no frames, no plugins, forms posting to us
only; plus ``nosniff``, no referrer, and no caching of pages (they show credits and tokens).
Images from the platforms come through ``/console/media`` (``media_proxy``), so nothing on a
page ever asks a third party: the console works offline.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from server.console.auth import Viewer, current_viewer
from server.console.views import FILTERS, PLATFORM_NAMES, image_source, took
from server.error_map import ApiError

PACKAGE = Path(__file__).parent
STATIC_DIR = PACKAGE / "static"
STATIC_ROUTE = "/console/static"

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self'",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def _static_version() -> str:
    """A hash of the static files, appended to their URLs so a new release is fetched anew."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.iterdir()):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def setup_templates(app: web.Application) -> None:
    environment = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("server.console", "templates"),
        autoescape=jinja2.select_autoescape(["html"], default_for_string=True, default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(FILTERS)
    environment.globals.update(
        static_version=_static_version(),
        static_route=STATIC_ROUTE,
        platform_names=PLATFORM_NAMES,
        took=took,
    )


def is_console(request: web.BaseRequest) -> bool:
    return request.path == "/" or request.path == "/console" or request.path.startswith("/console/")


async def security_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the console's headers on every console answer (static files too)."""
    if not is_console(request):
        return
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith(STATIC_ROUTE + "/"):
        response.headers.setdefault("Cache-Control", "no-cache")
    else:
        response.headers.setdefault("Cache-Control", "no-store")


def render(
    request: web.Request,
    template: str,
    context: dict[str, Any],
    *,
    viewer: Viewer | None,
    status: int = 200,
) -> web.Response:
    shared: dict[str, Any] = {
        "viewer": viewer,
        "csrf": viewer.csrf if viewer else None,
        "image": image_source(viewer.token if viewer else ""),
        "path": request.path,
    }
    return aiohttp_jinja2.render_template(template, request, shared | context, status=status)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def page(handler: Handler) -> Handler:
    """Errors of a console handler as an HTML page with the same status (not the API's JSON)."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return await error_page(request, exc.status_code, exc.message)
        except web.HTTPNotFound:
            return await error_page(request, 404, "Not found: there is no such page in the console.")

    return wrapped


async def error_page(request: web.Request, status: int, message: str) -> web.Response:
    viewer = await current_viewer(request)
    return render(request, "error.html", {"status": status, "message": message}, viewer=viewer, status=status)
