"""Reading and validating request bodies, with messages that say what to fix.

A body is read as a JSON object (``json_object``), then validated by the route's model from
``server.schemas`` (``parse_body``), the same model the OpenAPI document describes. A body that
fails answers 400 with the message of its first failing field.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from scraper.errors import ScraperError
from scraper.hosts import Platform
from scraper.urls import Kind
from server.error_map import ApiError, bad_request, http_error_for
from server.keys import SETTINGS
from server.schemas import BODY_ERROR, SUBMIT_MODELS, RequestBody, SubmitBody, SubmitContext

BodyT = TypeVar("BodyT", bound=BaseModel)


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


def validate_body(model: type[BodyT], body: Mapping[str, Any], *, context: object = None) -> BodyT:
    """``body`` as ``model``, or the API error its first failing field calls for."""
    try:
        return model.model_validate(body, context=context)
    except ValidationError as exc:
        raise bad_request(first_message(model, exc)) from None
    except ScraperError as exc:  # classification raises only InvalidUrl (a 400) today
        raise http_error_for(exc) from exc


async def parse_body(request: web.Request, model: type[BodyT], *, context: object = None) -> BodyT:
    """Read the request's JSON object and validate it as ``model`` (400, 408 or 413 otherwise)."""
    return validate_body(model, await json_object(request), context=context)


class SubmitRoute(Protocol):
    """What ``submit_body`` needs of a ``server.job_routes.JobRoute``."""

    @property
    def platform(self) -> Platform: ...
    @property
    def kinds(self) -> frozenset[Kind]: ...
    @property
    def family(self) -> str: ...


async def submit_body(request: web.Request, route: SubmitRoute) -> SubmitBody:
    """A submit route's body: its URL classified for the route, its options checked.

    ``.url`` is the ``ParsedUrl``; ``.options()`` the payload options (channel: count, since, tz);
    ``.raw`` the JSON object as received.
    """
    settings = request.app[SETTINGS]
    context = SubmitContext(route.platform, route.kinds, settings.channel_timezones[route.platform])
    return await parse_body(request, SUBMIT_MODELS[route.family], context=context)


def first_message(model: type[BaseModel], exc: ValidationError) -> str:
    """The message of the first failing field, in the order the model declares its fields."""
    error = exc.errors(include_url=False)[0]
    field = ".".join(str(part) for part in error["loc"]) or "body"
    if error["type"] == BODY_ERROR:
        return str(error["ctx"]["message"])
    if error["type"] == "missing" and issubclass(model, RequestBody):
        return model.missing_message(field)
    return f'"{field}": {error["msg"]}.'
