"""The non-browser client can reach platform hosts only: not IP literals, not via redirects."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from scraper.http import platform_http_session


@pytest.fixture
async def internal() -> AsyncIterator[TestServer]:
    async def secret(request: web.Request) -> web.Response:
        return web.Response(text="internal secret")

    async def bounce(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://127.0.0.1:{request.url.port}/secret")

    app = web.Application()
    app.router.add_get("/secret", secret)
    app.router.add_get("/bounce", bounce)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


async def test_ip_literal_is_refused(internal: TestServer) -> None:
    async with platform_http_session() as http:
        with pytest.raises(aiohttp.ClientConnectionError, match="only Douyin and TikTok"):
            await http.get(f"http://127.0.0.1:{internal.port}/secret")


async def test_redirect_to_an_internal_address_is_refused(internal: TestServer) -> None:
    # The platform host is mapped to the internal server, which redirects to an IP literal.
    async with platform_http_session(map_to=f"127.0.0.1:{internal.port}") as http:
        with pytest.raises(aiohttp.ClientConnectionError, match="only Douyin and TikTok"):
            await http.get("http://www.tiktok.com/bounce")


async def test_non_platform_hostname_is_refused() -> None:
    async with platform_http_session() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get("http://metadata.google.internal/computeMetadata/v1/")
