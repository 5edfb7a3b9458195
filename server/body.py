"""Reading and validating request bodies, with messages that say what to fix."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from server.error_map import ApiError, bad_request
from server.keys import SETTINGS


async def json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; 400 for anything else, 408 when it does not arrive in time.

    Size is aiohttp's ``client_max_size`` (413); time is ``body_timeout``, so a client that
    stalls mid-body holds its connection for seconds, not minutes.
    """
    timeout = request.app[SETTINGS].body_timeout.total_seconds()
    try:
        async with asyncio.timeout(timeout):
            raw = await request.read()
    except TimeoutError:
        raise ApiError(408, f"Request Timeout: the body did not arrive within {timeout:g} seconds.") from None
    if not raw.strip():
        raise bad_request('Missing JSON body. Send {"url": "..."} with Content-Type: application/json.')
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise bad_request(
            f'Malformed JSON body: {exc}. Send a JSON object such as {{"url": "..."}}.'
        ) from exc
    if not isinstance(body, dict):
        raise bad_request('The JSON body must be an object such as {"url": "..."}.')
    return body


def required_url(body: dict[str, Any]) -> str:
    """The ``url`` field as a non-empty string."""
    if "url" not in body or body["url"] is None:
        raise bad_request('Missing "url" in the JSON body.')
    url = body["url"]
    if not isinstance(url, str):
        raise bad_request(f'"url" must be a string, not {type(url).__name__}.')
    if not url.strip():
        raise bad_request('"url" is empty.')
    return url
