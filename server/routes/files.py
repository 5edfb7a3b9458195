"""GET/HEAD /api/files/{id} (ours): downloaded media for any plain HTTP client, with Range support.

The id is a random UUID handed out in a result: knowing it is the permission,
as with the platforms' own signed media URLs; files expire with their TTL.
"""

from __future__ import annotations

import re

from aiohttp import web

from server.error_map import ApiError
from server.keys import FILES

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


async def serve_file(request: web.Request) -> web.StreamResponse:
    file_id = request.match_info["file_id"].lower()
    store = request.app[FILES]
    row = await store.get(file_id) if _UUID.match(file_id) else None
    path = store.path_of(row) if row else None
    if row is None or path is None:
        raise ApiError(404, "File not found: it expired or never existed. Run the download job again.")
    name = f"{row.platform}-{row.item_id}-{path.name.split('.')[0]}{path.suffix}"
    return web.FileResponse(
        path,
        headers={
            "Content-Type": row.content_type,
            "Content-Disposition": f'inline; filename="{name}"',
            "Cache-Control": "private, max-age=3600",
            "X-Content-SHA256": row.sha256,
        },
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/files/{file_id}", serve_file)
