"""GET /api/openapi.json and GET /docs (ours): the API's description and a page that shows it.

The page is Swagger UI from the ``swagger-ui-bundle-v2`` package (Swagger UI 5, the first to
read OpenAPI 3.1), served from the package's own files: no CDN, so it works on a machine with no
internet. Only the few files the page uses are served, and its Content-Security-Policy lets it
load nothing from anywhere else (Swagger UI's online validator badge is off as well).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from swagger_ui_bundle import swagger_ui_path

from server.error_map import ApiError
from server.keys import SETTINGS
from server.openapi import build_document


@dataclass(slots=True)
class DocumentCache:
    """The document as sent, made on the first request (the router is frozen by then)."""

    body: bytes | None = None


DOCUMENT = web.AppKey("openapi_document", DocumentCache)

_SWAGGER = Path(str(swagger_ui_path))
#: The page's assets: Swagger UI's files by name, and our initializer.
_FILES = {name: _SWAGGER / name for name in ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png")}
# Relative URLs, so the page also works under a reverse proxy's path prefix.
INIT_JS = """\
window.ui = SwaggerUIBundle({
  url: "api/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  docExpansion: "list",
});
"""
PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>shortvid API</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/init.js"></script>
</body>
</html>
"""
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
    " font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


async def openapi_json(request: web.Request) -> web.Response:
    cache = request.app[DOCUMENT]
    if cache.body is None:
        built = build_document(request.app, metrics_auth=request.app[SETTINGS].metrics_auth)
        cache.body = json.dumps(built, ensure_ascii=False).encode()
    return web.Response(body=cache.body, content_type="application/json")


async def docs_page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html", headers={"Content-Security-Policy": CSP})


async def docs_asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["asset"]
    if name == "init.js":
        return web.Response(text=INIT_JS, content_type="text/javascript")
    path = _FILES.get(name)
    if path is None:
        raise ApiError(404, "Not found: the documentation page has no such file.")
    return web.FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})


def add_routes(app: web.Application) -> None:
    app[DOCUMENT] = DocumentCache()
    app.router.add_get("/api/openapi.json", openapi_json)
    app.router.add_get("/docs", docs_page)
    app.router.add_get("/docs/{asset}", docs_asset)
