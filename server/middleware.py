"""Middlewares: every error leaves in the vendor's envelope, never with a stack trace; every answer
is counted by route template and status; every request has an id, and every answer says it.

``X-Request-ID``: the client's, when it sent one that is sane (one header, 1 to 128 of HTTP's
token characters: letters, digits and ``!#$%&'*+-.^_`|~``), else a fresh ``uuid4`` hex. It is in
the log context for the request's duration and on the answer, errors included. Answers are
stamped in ``on_response_prepare`` (``stamp_headers``), not in a middleware, because a streamed
answer (Server-Sent Events, a file) sends its headers before its handler returns.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from server.auth import RATE_DECISION
from server.error_map import ApiError
from server.logs import log_fields
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


REQUEST_ID_HEADER = "X-Request-ID"
#: HTTP's ``token`` characters (RFC 9110 5.6.2): nothing a log line or a header could be split by.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}")
REQUEST_ID = web.RequestKey("request_id", str)


def request_id_of(request: web.BaseRequest) -> str:
    """The client's ``X-Request-ID`` when it is one sane value, else a new one."""
    sent = request.headers.getall(REQUEST_ID_HEADER, [])
    if len(sent) == 1 and _SANE_REQUEST_ID.fullmatch(sent[0]):
        return sent[0]
    return uuid.uuid4().hex


@web.middleware
async def request_ids(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the request its id and log everything done for it under that id (outermost, so
    every other middleware's lines carry it too)."""
    request_id = request[REQUEST_ID] = request_id_of(request)
    with log_fields(request_id=request_id):
        return await handler(request)


async def stamp_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the request id on every answer, and the token's rate-limit
    standing on the answers of requests whose token was known (``server.auth``)."""
    request_id = request.get(REQUEST_ID)
    if request_id is None:  # answered before the middlewares ran
        request_id = request[REQUEST_ID] = request_id_of(request)
    response.headers[REQUEST_ID_HEADER] = request_id
    decision = request.get(RATE_DECISION)
    if decision is not None:
        response.headers.update(decision.headers())


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
