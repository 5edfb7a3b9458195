"""GET /metrics: the Prometheus exposition, behind the admin token unless configured otherwise.

``SHORTVID_METRICS_AUTH``: ``admin`` (default) wants an admin token; ``loopback`` lets clients on
the loopback address in without one (others still need the admin token); ``open`` lets anyone in.
"""

from __future__ import annotations

import ipaddress
import logging

from aiohttp import web

from server.auth import authenticate
from server.error_map import ApiError
from server.keys import POOL, QUEUE, SETTINGS
from server.metrics import METRICS
from server.queue import QueueCounts
from server.routes.admin import ADMIN_ONLY

log = logging.getLogger(__name__)


def is_loopback(remote: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and their IPv4-mapped spellings; False for anything unparsable."""
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


async def _allowed(request: web.Request) -> None:
    mode = request.app[SETTINGS].metrics_auth
    if mode == "open" or (mode == "loopback" and is_loopback(request.remote)):
        return
    if not (await authenticate(request)).is_admin:
        raise ApiError(403, ADMIN_ONLY)


async def _queue_counts(request: web.Request) -> QueueCounts | None:
    """The queue's census for this scrape; None (its gauges left out) if the database did not answer."""
    try:
        return await request.app[QUEUE].counts()
    except Exception:
        log.warning("metrics: the queue census failed; its gauges are left out", exc_info=True)
        return None


async def metrics(request: web.Request) -> web.Response:
    await _allowed(request)
    registry = request.app[METRICS]
    registry.refresh(await _queue_counts(request), request.app.get(POOL))
    body, content_type = registry.render(request.headers.get("Accept"))
    return web.Response(body=body, headers={"Content-Type": content_type})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics)
