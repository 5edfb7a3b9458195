"""Reading and validating request bodies, with messages that say what to fix."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from server.error_map import bad_request


async def json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; 400 for anything else (size limits are aiohttp's client_max_size)."""
    raw = await request.read()
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
