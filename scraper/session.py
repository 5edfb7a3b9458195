"""One session: a browser context with its own cookie jar, confined to platform hosts."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from playwright.async_api import Browser, BrowserContext, Page, Route

from scraper.config import BrowserSettings
from scraper.hosts import host_allowed

log = logging.getLogger(__name__)
_ids = itertools.count(1)
#: Retryable errors (timeouts, network) a session may collect before it is replaced.
MAX_ERRORS = 3


def should_abort(url: str, resource_type: str, blocked_types: frozenset[str]) -> bool:
    """The request filter: never leave the platforms; skip heavy resources we do not read."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return parts.scheme not in ("data", "blob", "about")
    if not host_allowed(parts.hostname):
        return True
    return resource_type in blocked_types


class Session:
    """A leased identity. Knows its age, uses and errors, so the pool can retire it."""

    def __init__(self, context: BrowserContext, settings: BrowserSettings, generation: int) -> None:
        self.id = f"s{next(_ids)}"
        self.context = context
        self.settings = settings
        self.generation = generation
        self.created = time.monotonic()
        self.uses = 0
        self.errors = 0
        self.last_error: str | None = None
        self.aborted_requests = 0
        self.retire_requested = False

    @classmethod
    async def create(cls, browser: Browser, settings: BrowserSettings, generation: int) -> Session:
        context = await browser.new_context(
            user_agent=settings.user_agent or None,
            locale=settings.locale,
            timezone_id=settings.timezone_id,
            viewport={"width": settings.viewport_width, "height": settings.viewport_height},
            service_workers="block",
        )
        context.set_default_navigation_timeout(settings.navigation_timeout * 1000)
        context.set_default_timeout(settings.data_timeout * 1000)
        session = cls(context, settings, generation)
        await context.route("**/*", session._filter)
        return session

    async def _filter(self, route: Route) -> None:
        request = route.request
        if should_abort(request.url, request.resource_type, self.settings.blocked_resource_types):
            self.aborted_requests += 1
            if not host_allowed(urlsplit(request.url).hostname):
                log.warning("aborted request to a non-platform host", extra={"url": request.url[:200]})
            await route.abort("blockedbyclient")
        else:
            await route.continue_()

    @property
    def age(self) -> float:
        return time.monotonic() - self.created

    def worn_out(self) -> bool:
        """Past its use, age or error budget: retire it and make a fresh identity."""
        return (
            self.retire_requested
            or self.errors >= MAX_ERRORS
            or self.uses >= self.settings.session_max_uses
            or self.age >= self.settings.session_max_age
        )

    @asynccontextmanager
    async def page(self, *, user_agent: str | None = None) -> AsyncIterator[Page]:
        """A fresh tab, closed afterwards; ``user_agent`` overrides headers and navigator for it."""
        page = await self.context.new_page()
        try:
            if user_agent:
                cdp = await self.context.new_cdp_session(page)
                await cdp.send("Emulation.setUserAgentOverride", {"userAgent": user_agent})
            yield page
        finally:
            try:
                await page.close()
            except Exception:  # the browser may already be gone
                log.debug("page close failed", exc_info=True)

    async def close(self) -> None:
        try:
            await self.context.close()
        except Exception:
            log.debug("context close failed", exc_info=True)

    def census(self) -> dict[str, object]:
        return {
            "id": self.id,
            "uses": self.uses,
            "errors": self.errors,
            "age_seconds": round(self.age, 1),
            "last_error": self.last_error,
        }
