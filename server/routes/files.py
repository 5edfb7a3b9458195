"""GET/HEAD /api/files/{id} (ours): downloaded media for any plain HTTP client, with Range support,
on every node; and the internal route a node serves its own files to its peers on.

The id is a random UUID handed out in a result: knowing it is the permission,
as with the platforms' own signed media URLs; files expire with their TTL.
A file whose bytes are on another node's disk is streamed from that node (``server.file_relay``);
its owner stopped or gone answers 503, its owner gone past the grace period 410.
"""

from __future__ import annotations

from aiohttp import web

from models.tables import StoredFile
from models.video import iso_utc_ms
from server.error_map import ApiError
from server.file_relay import FILE_NOT_FOUND, INTERNAL_ROUTE, relay, unavailable
from server.ids import is_our_id
from server.keys import FILES, NODE, REGISTRY, SETTINGS
from server.metrics import METRICS
from server.node_auth import HEADER, verify


async def _row(request: web.Request) -> StoredFile:
    file_id = request.match_info["file_id"].lower()
    row = await request.app[FILES].get(file_id) if is_our_id(file_id) else None
    if row is None:
        raise ApiError(404, FILE_NOT_FOUND)
    return row


def _local(request: web.Request, row: StoredFile) -> web.FileResponse:
    """The file from this node's disk (aiohttp answers Range, If-Range and HEAD itself)."""
    path = request.app[FILES].path_of(row)
    if path is None:
        raise ApiError(404, FILE_NOT_FOUND)
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


async def serve_file(request: web.Request) -> web.StreamResponse:
    row = await _row(request)
    if row.lost_at is not None:
        raise ApiError(
            410,
            f"File gone: the node that held it ({row.node_id}) has been away since before"
            f" {iso_utc_ms(row.lost_at)}, past the grace period. Run the download job again.",
        )
    if request.app[FILES].holds(row):
        return _local(request, row)
    assert row.node_id is not None  # holds() is true for every ownerless row
    owner = await request.app[REGISTRY].get(row.node_id)
    count = request.app[METRICS].file_relayed
    if owner is None:
        count("owner_down")
        raise unavailable(row.id, f"the node that holds it ({row.node_id}) is not in the node registry")
    if owner.state != "up":
        since = iso_utc_ms(owner.stopped_at or owner.heartbeat_at)
        count("owner_down")
        raise unavailable(row.id, f"the node that holds it ({owner.id}) is {owner.state} since {since}")
    secret = request.app[SETTINGS].node_secret
    if secret is None:
        count("no_secret")
        raise unavailable(
            row.id,
            f"it is on node {owner.id}, and this node cannot ask it without SHORTVID_NODE_SECRET (set the"
            " same secret on every node)",
        )
    return await relay(request, owner, row.id, secret.get_secret_value().encode())


async def internal_file(request: web.Request) -> web.StreamResponse:
    """A peer asks for a file this node holds; only a request signed with the nodes' secret."""
    secret = request.app[SETTINGS].node_secret
    signature = request.headers.get(HEADER)
    if secret is None or not verify(
        secret.get_secret_value().encode(), request.method, request.path, signature
    ):
        raise ApiError(403, "Forbidden: the internal file route answers only other shortvid nodes.")
    row = await _row(request)
    if not request.app[FILES].holds(row):  # never a relay of a relay
        raise ApiError(404, f"File not held here: node {request.app[NODE].node_id} does not hold it.")
    return _local(request, row)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/files/{file_id}", serve_file)
    app.router.add_get(INTERNAL_ROUTE, internal_file)
