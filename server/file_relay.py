"""Stream a file from the node whose disk holds it (``GET/HEAD /internal/files/{id}`` there).

Why: downloads land on the worker that fetched them, but a client may ask any node (an api node
behind a load balancer). The answer is relayed chunk by chunk, never buffered whole; Range and
HEAD go through, and the owner's status, length, range and type come back unchanged. A dead or
unreachable owner is a 503 that says so (the file may come back with it), never a 404.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from server.error_map import ApiError
from server.metrics import METRICS
from server.node_auth import HEADER, sign
from server.node_registry import NodeInfo

INTERNAL_ROUTE = "/internal/files/{file_id}"
#: What the client's request may ask of the owner (ranges, revalidation).
FORWARDED = ("Range", "If-Range", "If-None-Match", "If-Modified-Since")
#: What the owner's answer says of the file, passed back as it is.
RELAYED = (
    "Content-Type",
    "Content-Length",
    "Content-Range",
    "Accept-Ranges",
    "Content-Disposition",
    "Cache-Control",
    "ETag",
    "Last-Modified",
    "X-Content-SHA256",
)
log = logging.getLogger(__name__)
CHUNK = 64 * 1024
RELAY_CLIENT = web.AppKey("relay_client", aiohttp.ClientSession)
RETRY_AFTER = "30"
FILE_NOT_FOUND = "File not found: it expired or never existed. Run the download job again."


def unavailable(file_id: str, why: str) -> ApiError:
    return ApiError(
        503,
        f"File temporarily unavailable: {why}. It is still recorded ({file_id}); try again when that"
        " node is back, or run the download job again.",
        headers={"Retry-After": RETRY_AFTER},
    )


async def relay_client(app: web.Application) -> AsyncIterator[None]:
    """One connection pool per node for relays: connect fast or fail, then no limit on a long body."""
    timeout = aiohttp.ClientTimeout(total=None, connect=5, sock_read=60)
    # trust_env off: a proxy from the environment must not see node-to-node traffic.
    async with aiohttp.ClientSession(timeout=timeout, trust_env=False, auto_decompress=False) as client:
        app[RELAY_CLIENT] = client
        yield


async def relay(request: web.Request, owner: NodeInfo, file_id: str, secret: bytes) -> web.StreamResponse:
    """The owner's answer for ``file_id``, streamed to ``request``'s client."""
    path = INTERNAL_ROUTE.format(file_id=file_id)
    headers = {name: request.headers[name] for name in FORWARDED if name in request.headers}
    headers[HEADER] = sign(secret, request.method, path)
    client = request.app[RELAY_CLIENT]
    count = request.app[METRICS].file_relayed
    response: web.StreamResponse | None = None
    try:
        async with client.request(
            request.method, owner.url + path, headers=headers, allow_redirects=False
        ) as upstream:
            if upstream.status in (401, 403):
                count("refused")
                raise unavailable(
                    file_id,
                    f"node {owner.id} refused this node's signature (every node needs the same"
                    " SHORTVID_NODE_SECRET)",
                )
            if upstream.status == 404:
                count("not_found")
                raise ApiError(404, FILE_NOT_FOUND)
            if upstream.status >= 500:
                count("unreachable")
                raise unavailable(file_id, f"node {owner.id}, which holds it, answered {upstream.status}")
            response = web.StreamResponse(
                status=upstream.status,
                headers={name: upstream.headers[name] for name in RELAYED if name in upstream.headers},
            )
            await response.prepare(request)
            if request.method != "HEAD":
                async for chunk in upstream.content.iter_chunked(CHUNK):
                    await response.write(chunk)
            await response.write_eof()
            count("streamed")
            return response
    except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
        if response is not None and response.prepared:
            # Too late for a status: close the connection, so the client sees a body shorter than
            # its Content-Length (a broken download, never a silently short file).
            log.warning("relay of file %s from node %s broke off: %r", file_id, owner.id, exc)
            count("broken")
            if request.transport is not None:
                request.transport.close()
            return response
        count("unreachable")
        raise unavailable(
            file_id, f"node {owner.id}, which holds it, cannot be reached ({type(exc).__name__})"
        ) from exc
