"""Console forms run the API's own handlers, so validation, charging and messages are the API's.

A form post becomes an internal call: the console clones the incoming request with the route's
method and path, ``Authorization: Bearer <the viewer's token>`` and the JSON body the API expects,
resolves it through the app's router and awaits the handler registered there. Nothing is
re-implemented: a bad URL is the same 400, a charge the same transaction, a ban the same 403.

Two aiohttp details make this work and are kept here alone. ``clone()`` refuses a request whose
body was read, so the caller is made (``ApiCaller(request)``) before the form is read. And a
request's body and route match are what ``read()`` caches in ``_read_bytes`` and what the
dispatcher sets as ``_match_info``; the clone gets both set the same way. ``tests/console``
exercises every path through here, so an aiohttp change that breaks it fails the tests.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import hdrs, web

from server.error_map import ApiError

#: Headers of the browser's request that the internal call does not carry over.
_DROPPED = frozenset(
    h.lower()
    for h in (
        hdrs.AUTHORIZATION,
        hdrs.COOKIE,
        hdrs.CONTENT_TYPE,
        hdrs.CONTENT_LENGTH,
        hdrs.TRANSFER_ENCODING,
        hdrs.CONTENT_ENCODING,
        hdrs.EXPECT,
        hdrs.ORIGIN,
        hdrs.REFERER,
    )
)


class ApiCaller:
    """Calls API routes as the viewer from within one console request."""

    def __init__(self, request: web.Request) -> None:
        self._request = request
        self._base = request.clone()  # before the form is read: clone() refuses a read body

    async def call(
        self, method: str, path: str, token: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The route's ``data`` on success; the route's ``ApiError`` (status and message) otherwise."""
        headers = {k: v for k, v in self._request.headers.items() if k.lower() not in _DROPPED}
        headers[hdrs.AUTHORIZATION] = f"Bearer {token}"
        if body is not None:
            headers[hdrs.CONTENT_TYPE] = "application/json"
        clone = self._base.clone(method=method, rel_url=path, headers=headers)
        assert isinstance(clone, web.Request)
        clone._read_bytes = json.dumps(body).encode() if body is not None else b""
        app = self._request.app
        match = await app.router.resolve(clone)
        if match.http_exception is not None:
            raise ApiError(match.http_exception.status, f"No API route {method} {path}.")
        match.add_app(app)
        match.freeze()
        clone._match_info = match
        try:
            response = await match.handler(clone)
        except web.HTTPException as exc:
            raise ApiError(exc.status, exc.reason) from exc
        if not isinstance(response, web.Response) or response.body is None:
            raise ApiError(500, f"The API route {path} answered no JSON body.")
        assert isinstance(response.body, bytes)
        answer = json.loads(response.body)
        if not answer.get("success"):
            raise ApiError(response.status, str(answer.get("error", "The API refused the request.")))
        data: dict[str, Any] = answer["data"]
        return data
