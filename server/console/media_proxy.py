"""Covers, avatars and photo-post images through our own origin, so the console's CSP stays 'self'.

Why a proxy: a result's images live on the platforms' CDN hosts. Loading them straight from the
viewer's browser would need ``img-src https:`` (any host) and would leak the viewer's address and
the page to the platforms; and in offline mode those hosts exist only behind the server's host
mapping, which the viewer's browser does not have. So the page asks ``/console/media`` and the
server fetches the image with the same SSRF-safe client it downloads media with
(``scraper.http.platform_http_session``: platform hosts only, on every redirect hop, through the
offline mapping when there is one).

Bounds: only URLs the console itself wrote into this viewer's page (an HMAC of the URL keyed by the
viewer's token, so the route is no open proxy, not even for signed-in users), only ``https`` on
platform hosts, raster image types only (no SVG, which could script our origin when opened),
``MAX_BYTES`` per image, a short in-memory cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import aiohttp
from aiohttp import web

from scraper.config import BrowserSettings
from scraper.hosts import host_allowed
from scraper.http import platform_http_session

ROUTE = "/console/media"
MAX_BYTES = 5 * 1024 * 1024
CACHE_SECONDS = 300.0
CACHE_BYTES = 32 * 1024 * 1024
TIMEOUT = 15.0
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif", "image/avif", "image/heic"})


class MediaRefused(Exception):
    """The URL may not be fetched, or what came back is no image we pass on."""


def proxyable(url: object) -> bool:
    """An ``https`` URL on a platform host (the only URLs the proxy fetches)."""
    if not isinstance(url, str) or len(url) > 4096:
        return False
    parts = urlsplit(url)
    return parts.scheme == "https" and host_allowed(parts.hostname)


def signature(key: str, url: str) -> str:
    return hmac.new(key.encode(), b"console-media\x00" + url.encode(), hashlib.sha256).hexdigest()[:32]


def media_url(key: str, url: object) -> str | None:
    """The console URL that shows ``url`` (None: not a URL the proxy would fetch)."""
    if not proxyable(url):
        return None
    assert isinstance(url, str)
    return f"{ROUTE}?{urlencode({'u': url, 's': signature(key, url)})}"


def signed(key: str, url: str, sig: str) -> bool:
    return hmac.compare_digest(signature(key, url), sig)


@dataclass(frozen=True, slots=True)
class Image:
    body: bytes
    content_type: str
    expires: float


class MediaProxy:
    """Fetches platform images for the console, with a small time- and size-bounded cache."""

    def __init__(self, browser: Callable[[], BrowserSettings]) -> None:
        self._browser = browser
        self._session: aiohttp.ClientSession | None = None
        self._cache: OrderedDict[str, Image] = OrderedDict()
        self._cached_bytes = 0
        self._lock = asyncio.Lock()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            settings = self._browser()  # read late: offline mode points it at the replica on start-up
            self._session = platform_http_session(
                map_to=settings.host_map,
                ca_file=Path(settings.ca_file) if settings.ca_file else None,
                timeout=TIMEOUT,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def get(self, url: str) -> Image:
        if not proxyable(url):
            raise MediaRefused("only https images on Douyin and TikTok hosts are shown")
        now = time.monotonic()
        cached = self._cache.get(url)
        if cached is not None and cached.expires > now:
            self._cache.move_to_end(url)
            return cached
        image = await self._fetch(url)
        async with self._lock:
            self._remember(url, Image(image.body, image.content_type, now + CACHE_SECONDS))
        return image

    async def _fetch(self, url: str) -> Image:
        try:
            async with self._client().get(url, max_redirects=3, headers={"Accept": "image/*"}) as response:
                kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if response.status != 200 or kind not in IMAGE_TYPES:
                    raise MediaRefused(f"the platform answered {response.status} {kind or 'without a type'}")
                if (response.content_length or 0) > MAX_BYTES:
                    raise MediaRefused("the image is too large")
                body = bytearray()
                async for chunk in response.content.iter_chunked(65536):
                    body += chunk
                    if len(body) > MAX_BYTES:
                        raise MediaRefused("the image is too large")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise MediaRefused(f"the image could not be fetched: {type(exc).__name__}") from exc
        return Image(bytes(body), kind, 0.0)

    def _remember(self, url: str, image: Image) -> None:
        old = self._cache.pop(url, None)
        if old is not None:
            self._cached_bytes -= len(old.body)
        self._cache[url] = image
        self._cached_bytes += len(image.body)
        while self._cached_bytes > CACHE_BYTES and self._cache:
            _, dropped = self._cache.popitem(last=False)
            self._cached_bytes -= len(dropped.body)


PROXY = web.AppKey("console_media_proxy", MediaProxy)


def proxy_context(
    browser: Callable[[web.Application], BrowserSettings],
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A ``cleanup_ctx`` owning the proxy's HTTP client."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        proxy = MediaProxy(lambda: browser(app))
        app[PROXY] = proxy
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                await proxy.close()

    return ctx
