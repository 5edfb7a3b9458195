"""Middlewares: every error leaves in the vendor's envelope, never with a stack trace; every answer
is counted by route template and status."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from server.error_map import ApiError
from server.metrics import METRICS

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_MESSAGES = {
    404: "Not found: no such route. See the API documentation for the available routes.",
    405: "Method not allowed for this route.",
    413: "Request body too large.",
}


def error_body(message: str) -> dict[str, object]:
    return {"success": False, "error": message}


#: The route label of a request no route matched (404, 405): one value, whatever the path was.
UNMATCHED = "unmatched"


def route_label(request: web.Request) -> str:
    """The matched route's template (``/api/job/{job_id}``), never the raw path: raw paths are unbounded."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


@web.middleware
async def request_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count the answer, placed outside ``json_errors`` so it sees the status the client gets."""
    metrics = request.app.get(METRICS)
    if metrics is None:
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # redirects and others that json_errors lets through
        metrics.request(request.method, route_label(request), exc.status)
        raise
    except Exception:
        metrics.request(request.method, route_label(request), 500)
        raise
    metrics.request(request.method, route_label(request), response.status)
    return response


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return web.json_response(error_body(exc.message), status=exc.status_code, headers=exc.headers)
    except web.HTTPException as exc:
        if exc.status_code < 400:
            raise
        message = _HTTP_MESSAGES.get(exc.status_code, exc.reason)
        if exc.status_code == 413:
            message = f"Request body too large: the limit is {request.app._client_max_size} bytes."
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        return web.json_response(error_body(message), status=exc.status_code, headers=headers)
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        return web.json_response(error_body("Internal server error"), status=500)
