"""GET /api/health: the vendor's shape, plus a census of the queue and the browser pool."""

from __future__ import annotations

from aiohttp import web

from models.types import utcnow
from models.video import iso_utc_ms
from server.keys import POOL, QUEUE


async def health(request: web.Request) -> web.Response:
    body: dict[str, object] = {"success": True, "status": "ok", "timestamp": iso_utc_ms(utcnow())}
    counts = await request.app[QUEUE].counts()
    body["queue"] = {"depth": counts.depth, "by_state": counts.by_state}
    if POOL in request.app:
        census = request.app[POOL].census()
        body["pool"] = {key: value for key, value in census.items() if key != "detail"}
    return web.json_response(body)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/health", health)
