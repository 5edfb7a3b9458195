"""One session: a browser context with its own cookie jar, confined to platform hosts.

A session is an identity with a health state, as a seasoned operator keeps it:
``healthy``; ``cooling`` for a while after a risk signal (exponential backoff);
``retired`` once its error score, age or use count is past the limit, or its
page crashed. The pool closes retired sessions and makes fresh ones.
"""

from __future__ import annotations

import enum
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Browser, BrowserContext, Page, Route

from scraper import errors
from scraper.config import BrowserSettings, Identity
from scraper.cookies import load_cookies, platform_cookies
from scraper.hosts import host_allowed
from scraper.outcome import Outcome, outcome_of

log = logging.getLogger(__name__)
_ids = itertools.count(1)
#: How long a used tab may take to go blank before it is closed instead of reused.
_BLANK_TIMEOUT_MS = 5000


class SessionState(enum.StrEnum):
    HEALTHY = "healthy"
    COOLING = "cooling"
    RETIRED = "retired"


def should_abort(
    url: str, resource_type: str, blocked_types: frozenset[str], blocked_patterns: tuple[str, ...] = ()
) -> bool:
    """The request filter: never leave the platforms; skip heavy resources and beacons we do not need."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return parts.scheme not in ("data", "blob", "about")
    if not host_allowed(parts.hostname):
        return True
    if resource_type in blocked_types:
        return True
    return any(pattern in url for pattern in blocked_patterns)


class Session:
    """A leased identity. Knows its age, uses, error score and cooldown, so the pool can rest or retire it."""

    def __init__(
        self,
        context: BrowserContext,
        settings: BrowserSettings,
        generation: int,
        identity: Identity,
        browser: Browser | None = None,
    ) -> None:
        self.id = f"s{next(_ids)}"
        self.context = context
        self.settings = settings
        self.generation = generation
        self.identity = identity
        self.browser = browser
        self.created = time.monotonic()
        self.uses = 0
        self.pages = 0
        self.score = 0.0
        self.risk_streak = 0
        self.cooling_until = 0.0
        self.retire_reason: str | None = None
        self.last_error: str | None = None
        self.aborted_requests = 0
        self.on_page: Callable[[], None] = lambda: None
        self._spare_tab: Page | None = None

    @classmethod
    async def create(
        cls, browser: Browser, settings: BrowserSettings, generation: int, identity: Identity
    ) -> Session:
        options: dict[str, Any] = {
            "user_agent": identity.user_agent or settings.user_agent or None,
            "locale": identity.locale or settings.locale,
            "timezone_id": identity.timezone_id or settings.timezone_id,
            "viewport": {
                "width": identity.viewport_width or settings.viewport_width,
                "height": identity.viewport_height or settings.viewport_height,
            },
            "service_workers": "block",
        }
        if identity.proxy:
            options["proxy"] = {
                "server": identity.proxy,
                **({"username": identity.proxy_username} if identity.proxy_username else {}),
                **({"password": identity.proxy_password} if identity.proxy_password else {}),
            }
        context = await browser.new_context(**options)
        context.set_default_navigation_timeout(settings.navigation_timeout * 1000)
        context.set_default_timeout(settings.data_timeout * 1000)
        if identity.cookies_file:
            # Playwright types the cookies as its SetCookieParam TypedDict, which it does not export
            # (only playwright._impl has it); scraper.cookies builds plain dicts of that shape.
            await context.add_cookies(platform_cookies(load_cookies(Path(identity.cookies_file))))  # type: ignore[arg-type]
        session = cls(context, settings, generation, identity, browser)
        await context.route("**/*", session._filter)
        return session

    async def _filter(self, route: Route) -> None:
        request = route.request
        try:
            if should_abort(
                request.url,
                request.resource_type,
                self.settings.blocked_resource_types,
                self.settings.blocked_url_patterns,
            ):
                self.aborted_requests += 1
                if not host_allowed(urlsplit(request.url).hostname):
                    log.warning("aborted request to a non-platform host", extra={"url": request.url[:200]})
                await route.abort("blockedbyclient")
            else:
                await route.continue_()
        except Exception:  # the page closed while the request was pending
            log.debug("route handling failed", exc_info=True)

    # ---- health -------------------------------------------------------------------------------

    @property
    def age(self) -> float:
        return time.monotonic() - self.created

    def state(self, now: float | None = None) -> SessionState:
        if self.worn_out():
            return SessionState.RETIRED
        now = time.monotonic() if now is None else now
        return SessionState.COOLING if now < self.cooling_until else SessionState.HEALTHY

    def worn_out(self) -> bool:
        """Past its use, age or error budget, or crashed: retire it and make a fresh identity."""
        if self.retire_reason:
            return True
        if self.score >= self.settings.session_max_score:
            self.retire_reason = "error_score"
        elif self.uses >= self.settings.session_max_uses:
            self.retire_reason = "max_uses"
        elif self.age >= self.settings.session_max_age:
            self.retire_reason = "max_age"
        return self.retire_reason is not None

    def record(self, error: BaseException | None) -> None:
        """Learn from a job's outcome: risk cools down and scores; a crash retires; success heals."""
        outcome = outcome_of(error)
        if outcome is Outcome.RISK:
            self.risk_streak += 1
            self.score += 1.0
            pause = min(self.settings.cooldown_base * 2 ** (self.risk_streak - 1), self.settings.cooldown_max)
            self.cooling_until = time.monotonic() + pause
            self.last_error = getattr(error, "code", "blocked")
        elif isinstance(error, errors.BrowserCrashed):
            self.retire_reason = "crashed"
            self.last_error = error.code
        elif isinstance(error, errors.ScrapeTimeout | errors.NetworkError):
            self.score += 0.5
            self.last_error = error.code
        else:  # ok, business answers, layout: the platform served this identity normally
            self.risk_streak = 0
            self.score = max(0.0, self.score - 0.5)

    # ---- pages --------------------------------------------------------------------------------

    @asynccontextmanager
    async def page(self, *, user_agent: str | None = None) -> AsyncIterator[Page]:
        """A tab for one page load; ``user_agent`` overrides headers and navigator for it.

        With ``reuse_tabs`` the session keeps its tab between jobs (a new tab costs a
        renderer start, about a quarter of a parse), blanked after each use so the old
        document's scripts stop. A tab with a user-agent override, or one that failed
        to blank, is closed instead.
        """
        reusable = self.settings.reuse_tabs and not user_agent
        page = self._spare_tab if reusable and self._spare_tab and not self._spare_tab.is_closed() else None
        self._spare_tab = None
        if page is None:
            page = await self.context.new_page()
        self.pages += 1
        self.on_page()
        try:
            if user_agent:
                cdp = await self.context.new_cdp_session(page)
                await cdp.send("Emulation.setUserAgentOverride", {"userAgent": user_agent})
            yield page
        finally:
            if not (reusable and await _blank(page)):
                await _close_tab(page)
            elif not self.retire_reason:
                self._spare_tab = page

    async def close(self) -> None:
        try:
            await self.context.close()
        except Exception:
            log.debug("context close failed", exc_info=True)

    def census(self) -> dict[str, object]:
        now = time.monotonic()
        return {
            "id": self.id,
            "identity": self.identity.name,
            "state": self.state(now).value,
            "uses": self.uses,
            "pages": self.pages,
            "score": self.score,
            "cooling_seconds": round(max(0.0, self.cooling_until - now), 1),
            "age_seconds": round(self.age, 1),
            "last_error": self.last_error,
            "retire_reason": self.retire_reason,
        }


async def _blank(page: Page) -> bool:
    """Navigate a used tab to about:blank so its document stops; False if it cannot be reused."""
    try:
        if page.is_closed():
            return False
        await page.goto("about:blank", timeout=_BLANK_TIMEOUT_MS)
        return page.url == "about:blank"
    except Exception:  # crashed, gone, or stuck: do not reuse
        log.debug("blanking a tab failed", exc_info=True)
        return False


async def _close_tab(page: Page) -> None:
    try:
        await page.close()
    except Exception:  # the browser may already be gone
        log.debug("page close failed", exc_info=True)
