"""One session: a browser context with its own cookie jar, confined to platform hosts.

A session is an identity with a health state, as a seasoned operator keeps it:
``healthy``; ``cooling`` for a while after a risk signal (exponential backoff);
``retired`` once its error score, age or use count is past the limit, or its
page crashed. The pool closes retired sessions and makes fresh ones.

Its page loads keep Chromium's HTTP cache: heavy resource types and beacons are refused by
the tab's own CDP ``Fetch`` interception, which pauses only the requests it refuses. The host
allowlist is the browser's ``--host-resolver-rules``; only a proxied identity, whose hosts
resolve at the proxy, also has every request checked by a Playwright route (which costs a
round trip per request and turns the HTTP cache off).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Browser, BrowserContext, CDPSession, Page, Route

from scraper import errors
from scraper.config import BrowserSettings, Identity
from scraper.cookies import load_cookies, platform_cookies
from scraper.hosts import Platform, host_allowed
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


#: Playwright's ``request.resource_type`` values as CDP ``Network.ResourceType`` names.
_CDP_RESOURCE_TYPES = {
    "document": "Document",
    "stylesheet": "Stylesheet",
    "image": "Image",
    "media": "Media",
    "font": "Font",
    "script": "Script",
    "texttrack": "TextTrack",
    "xhr": "XHR",
    "fetch": "Fetch",
    "prefetch": "Prefetch",
    "eventsource": "EventSource",
    "websocket": "WebSocket",
    "manifest": "Manifest",
    "signedexchange": "SignedExchange",
    "ping": "Ping",
    "cspviolationreport": "CSPViolationReport",
    "preflight": "Preflight",
    "other": "Other",
}


def blocking_patterns(
    blocked_types: frozenset[str], blocked_patterns: tuple[str, ...]
) -> list[dict[str, str]]:
    """``Fetch.enable`` patterns for ``should_abort``'s type and substring rules (hosts aside).

    CDP's ``Network.setBlockedURLs`` takes URL patterns only (a resource type is not in the
    URL) and works only with the ``Network`` domain on, which streams every request's events
    to us; ``Fetch`` takes both kinds and pauses only the matching requests.
    """
    unknown = blocked_types - _CDP_RESOURCE_TYPES.keys()
    if unknown:
        raise ValueError(f"unknown resource types {sorted(unknown)} (one of {sorted(_CDP_RESOURCE_TYPES)})")
    patterns = [
        {"resourceType": _CDP_RESOURCE_TYPES[t], "requestStage": "Request"} for t in sorted(blocked_types)
    ]
    for substring in blocked_patterns:  # Fetch wildcards: * and ?, backslash escapes
        escaped = substring.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")
        patterns.append({"urlPattern": f"*{escaped}*", "requestStage": "Request"})
    return patterns


@dataclass(eq=False, slots=True)
class Tab:
    """A session's tab with its own CDP channel: refuses blocked requests, counts its page loads."""

    page: Page
    cdp: CDPSession
    platform: Platform | None
    uses: int = 0
    crashed: bool = False

    @property
    def usable(self) -> bool:
        return not self.crashed and not self.page.is_closed()


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
        #: Told the code of every block this identity met, wherever it was recorded (the pool counts).
        self.on_block: Callable[[str], None] = lambda code: None
        #: Token buckets per endpoint family: spend one before each request (``scraper.pacing``).
        self.pacer = settings.make_pacer()
        #: One idle tab per platform: mixing platforms in one tab swaps renderer processes.
        self._spare_tabs: dict[Platform | None, Tab] = {}
        self._tabs_in_use = 0
        self._park_task: asyncio.Task[None] | None = None
        self._parking = False
        self._block_patterns = blocking_patterns(
            settings.blocked_resource_types, settings.blocked_url_patterns
        )

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
        if session.filters_requests:
            await context.route("**/*", session._filter)
        return session

    @property
    def filters_requests(self) -> bool:
        """True when every request goes through ``should_abort``: a proxy resolves hosts, not our rules."""
        return bool(self.identity.proxy)

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
            self.on_block(self.last_error)
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
    async def page(
        self, *, user_agent: str | None = None, platform: Platform | None = None
    ) -> AsyncIterator[Page]:
        """A tab for one page load on ``platform``; ``user_agent`` overrides headers and navigator for it.

        With ``reuse_tabs`` the session keeps one tab per platform between jobs (a new tab costs
        a renderer start) and the next job navigates it straight to its URL; a tab idle for
        ``tab_park_after`` seconds is blanked, and one past ``tab_max_uses`` loads is closed. A
        tab with a user-agent override is never shared, nor one whose job ended in a timeout, a
        network or browser error or was cancelled: its document may be stuck.
        """
        await self._stop_parking()
        reusable = self.settings.reuse_tabs and not user_agent
        tab = self._spare_tabs.pop(platform, None) if reusable else None
        if tab is not None and not tab.usable:
            await _close_tab(tab.page)
            tab = None
        if tab is None:
            tab = await self.new_tab(platform)
        tab.uses += 1
        self.pages += 1
        self.on_page()
        self._tabs_in_use += 1
        answered = True
        try:
            if user_agent:
                await tab.cdp.send("Emulation.setUserAgentOverride", {"userAgent": user_agent})
            yield tab.page
        except errors.ScraperError as exc:
            answered = outcome_of(exc) is not Outcome.NETWORK  # the platform answered: the tab is fine
            raise
        except BaseException:
            answered = False
            raise
        finally:
            self._tabs_in_use -= 1
            keep = answered and reusable and tab.usable and tab.uses < self.settings.tab_max_uses
            keep = keep and not self.retire_reason
            if keep and platform not in self._spare_tabs:
                self._spare_tabs[platform] = tab
                self._schedule_parking()
            else:
                await _close_tab(tab.page)

    async def new_tab(self, platform: Platform | None = None) -> Tab:
        """A new tab whose blocked resource types and beacons are refused before they leave Chromium.

        ``page()`` keeps these; a tab kept elsewhere (a resident page) is its owner's to close.
        """
        page = await self.context.new_page()
        try:
            cdp = await self.context.new_cdp_session(page)
            tab = Tab(page, cdp, platform)
            page.on("crash", lambda _: setattr(tab, "crashed", True))
            if not self.filters_requests and self._block_patterns:
                cdp.on("Fetch.requestPaused", lambda event: self._refuse(cdp, event))
                await cdp.send("Fetch.enable", {"patterns": self._block_patterns})
        except BaseException:
            await _close_tab(page)
            raise
        return tab

    def _refuse(self, cdp: CDPSession, event: dict[str, Any]) -> None:
        """Fail a request the tab's ``Fetch`` patterns paused (a blocked type or beacon)."""
        self.aborted_requests += 1
        reply = {"requestId": event["requestId"], "errorReason": "BlockedByClient"}
        task = asyncio.get_running_loop().create_task(cdp.send("Fetch.failRequest", reply))
        task.add_done_callback(_ignore_outcome)  # the tab may close before the answer

    # ---- parking ------------------------------------------------------------------------------

    def _schedule_parking(self) -> None:
        if self._tabs_in_use == 0 and self._park_task is None:
            self._park_task = asyncio.get_running_loop().create_task(self._park_later())

    async def _park_later(self) -> None:
        await asyncio.sleep(self.settings.tab_park_after)
        self._parking = True
        try:
            await self.park()
        finally:
            self._parking = False
            self._park_task = None

    async def _stop_parking(self) -> None:
        """Cancel a pending park; let one already blanking the tabs finish (it takes a few ms)."""
        task = self._park_task
        if task is None or task.done():
            return
        if not self._parking:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self._park_task = None

    async def park(self) -> None:
        """Blank the idle tabs so their documents' scripts stop; a tab that cannot blank is closed."""
        for platform, tab in list(self._spare_tabs.items()):
            if not await _blank(tab.page):
                self._spare_tabs.pop(platform, None)
                await _close_tab(tab.page)

    async def close(self) -> None:
        await self._stop_parking()
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


def _ignore_outcome(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("refusing a paused request failed: %s", task.exception())


async def _close_tab(page: Page) -> None:
    try:
        await page.close()
    except Exception:  # the browser may already be gone
        log.debug("page close failed", exc_info=True)
