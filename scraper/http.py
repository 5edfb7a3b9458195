"""A non-browser HTTP client confined to platform hosts, honouring the browser's host mapping.

Used where a browser is not needed (tests of the fixture site, media downloads).
It applies the same rules as Chromium's ``--host-resolver-rules`` from
``scraper.hosts``: platform hosts resolve normally (or to the fixture site when
a host map is set), every other host fails to resolve.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from scraper.hosts import host_allowed


class PlatformOnlyResolver(AbstractResolver):
    """Resolves platform hosts only; with ``map_to`` every platform host goes to one address."""

    def __init__(self, map_to: str | None = None) -> None:
        self._map_to = map_to
        # DefaultResolver is an alias chosen at import (threaded or aiodns), not a class to annotate with.
        self._default: AbstractResolver | None = None

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if not host_allowed(host):
            raise OSError(f"host {host!r} is not a platform host; refusing to connect")
        if self._map_to:
            ip, _, mapped_port = self._map_to.rpartition(":")
            return [
                ResolveResult(
                    hostname=host,
                    host=ip,
                    port=int(mapped_port),
                    family=socket.AF_INET,
                    proto=0,
                    flags=socket.AI_NUMERICHOST,
                )
            ]
        if self._default is None:
            self._default = DefaultResolver()
        return await self._default.resolve(host, port, family)

    async def close(self) -> None:
        if self._default is not None:
            await self._default.close()


class PlatformOnlyConnector(aiohttp.TCPConnector):
    """Refuses every connection to a non-platform host, IP literals and redirect hops included.

    aiohttp skips the resolver for IP literals and follows redirects on its own,
    so the resolver alone is not a boundary; every connection attempt passes here.
    """

    async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:  # noqa: ASYNC109 (aiohttp signature)
        if not host_allowed(req.url.host):
            raise aiohttp.ClientConnectionError(
                f"refusing to connect to {req.url.host!r}: only Douyin and TikTok hosts may be fetched"
            )
        return await super().connect(req, traces, timeout)


def client_ssl_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """System trust, plus the fixture site's test CA when ``ca_file`` is given."""
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


def platform_http_session(
    *,
    map_to: str | None = None,
    ca_file: Path | None = None,
    timeout: float = 30.0,
    **kwargs: Any,
) -> aiohttp.ClientSession:
    """An aiohttp session that can only reach platform hosts (through the mapping, if any)."""
    connector = PlatformOnlyConnector(
        resolver=PlatformOnlyResolver(map_to),
        ssl=client_ssl_context(ca_file),
        limit=32,
    )
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout), **kwargs)
